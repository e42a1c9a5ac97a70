--- codegemma-lsp for Neovim: local fill-in-the-middle completion over LSP.
---
--- One `setup()` for every Neovim from 0.7 on, picking the best client feature the running version has:
---   0.12+  vim.lsp.config + vim.lsp.enable, ghost text from vim.lsp.inline_completion, accept with <Tab>
---   0.11   vim.lsp.config + vim.lsp.enable, the completion fallback through vim.lsp.completion (autotrigger)
---   0.8-0.10  vim.lsp.start on FileType, the completion fallback through omnifunc (or nvim-cmp/blink)
---   0.7    vim.lsp.start_client + vim.lsp.buf_attach_client on FileType (omnifunc)
--- Server settings are the server's documented keys (model, nGpuLayers, maxTokens, timeBudgetMs, prefixTokens,
--- suffixTokens, fimLayout, ctxSize, threads, speculate, context.crossFile, context.maxTokens), sent as `init_options`; `set_settings()` changes them
--- later through workspace/didChangeConfiguration.
local M = {}

M.name = 'codegemma'

---@class codegemma.Options
M.defaults = {
  --- The server command; `codegemma-lsp` must be on $PATH, or give an absolute path.
  cmd = { 'codegemma-lsp' },
  --- Buffers of these filetypes get completion.
  filetypes = {
    'c', 'cpp', 'cs', 'css', 'go', 'html', 'java', 'javascript', 'javascriptreact', 'kotlin', 'lua', 'php',
    'python', 'ruby', 'rust', 'scala', 'sh', 'sql', 'swift', 'typescript', 'typescriptreact', 'zig',
  },
  --- Files or folders marking a project root (the path the model sees is relative to it).
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod' },
  --- Server settings, e.g. { model = 'qwen2.5-coder-0.5b-q4', maxTokens = 64, context = { crossFile = true } }.
  settings = {},
  --- Ghost text through textDocument/inlineCompletion where Neovim has it (0.12+).
  inline = true,
  --- Insert-mode keys for ghost text (0.12+): accept, next and previous suggestion. false leaves a key unmapped.
  keys = { accept = '<Tab>', next = '<M-]>', prev = '<M-[>' },
  --- The completion-menu fallback: 'auto' (on where ghost text is not available), true or false.
  completion = 'auto',
  --- Open the menu by itself while typing (vim.lsp.completion on 0.11+); otherwise <C-x><C-o> asks.
  autotrigger = true,
  --- Called after the plugin's own on_attach, with (client, bufnr).
  on_attach = nil,
}

local has_config = vim.lsp.config ~= nil and vim.lsp.enable ~= nil -- 0.11+
local has_inline = vim.lsp.inline_completion ~= nil -- 0.12+
local has_completion = vim.lsp.completion ~= nil and vim.lsp.completion.enable ~= nil -- 0.11+
local has_method_calls = vim.fn.has('nvim-0.11') == 1 -- client:request(); before 0.11 client.request()
local islist = vim.islist or vim.tbl_islist

--- Merge `b` into a copy of `a`; lists (filetypes, cmd, …) are replaced, not merged.
local function merge(a, b)
  if type(a) ~= 'table' or type(b) ~= 'table' or islist(b) then
    if b == nil then
      return a
    end
    return b
  end
  local out = vim.deepcopy(a)
  for k, v in pairs(b) do
    out[k] = merge(out[k], v)
  end
  return out
end

local function map_inline_keys(bufnr, keys)
  local function set(lhs, rhs, desc)
    if lhs then
      vim.keymap.set('i', lhs, rhs, { buffer = bufnr, expr = true, replace_keycodes = true, desc = desc })
    end
  end
  set(keys.accept, function()
    -- get() accepts the shown suggestion and returns true; otherwise the key does what it always does.
    if not vim.lsp.inline_completion.get({ bufnr = bufnr }) then
      return keys.accept
    end
    return ''
  end, 'codegemma: accept suggestion')
  set(keys.next, function()
    vim.lsp.inline_completion.select({ bufnr = bufnr, count = 1 })
    return ''
  end, 'codegemma: next suggestion')
  set(keys.prev, function()
    vim.lsp.inline_completion.select({ bufnr = bufnr, count = -1 })
    return ''
  end, 'codegemma: previous suggestion')
end

--- What to turn on for a buffer the server attached to.
local function on_attach(opts)
  return function(client, bufnr)
    local inline = (opts.inline and has_inline) and true or false
    if inline then
      vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
      map_inline_keys(bufnr, opts.keys or {})
    end
    local completion = opts.completion
    if completion == 'auto' then
      completion = not inline
    end
    local menu = false
    if completion then
      if has_completion then
        vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = opts.autotrigger })
        menu = 'vim.lsp.completion'
      else
        vim.bo[bufnr].omnifunc = 'v:lua.vim.lsp.omnifunc'
        menu = 'omnifunc'
      end
    end
    -- What this buffer got, for :lua =vim.b.codegemma and for the tests.
    vim.b[bufnr].codegemma = { inline = inline, completion = menu }
    if opts.on_attach then
      opts.on_attach(client, bufnr)
    end
  end
end

--- The client configuration (vim.lsp.Config on 0.11+, a start_client config before).
---@param opts? codegemma.Options
function M.client_config(opts)
  opts = merge(M.defaults, opts or {})
  return {
    name = M.name,
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    -- init_options reach the server before it loads the model, so it loads once, with these settings. Later
    -- changes go through M.set_settings() (workspace/didChangeConfiguration). `settings` stays empty on purpose:
    -- Neovim 0.10+ would send it as didChangeConfiguration while the model is still loading.
    init_options = opts.settings,
    settings = vim.empty_dict(),
    on_attach = on_attach(opts),
  }, opts
end

local function root_dir(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if vim.fs and vim.fs.find and name ~= '' then
    local found = vim.fs.find(markers, { upward = true, path = vim.fs.dirname(name) })[1]
    if found then
      return vim.fs.dirname(found)
    end
  end
  return (vim.uv or vim.loop).cwd()
end

local legacy_client_id = nil

--- Start (or reuse) the client for `bufnr` on Neovim 0.7-0.10, where vim.lsp.enable does not exist.
local function attach_legacy(config, bufnr)
  local cfg = vim.deepcopy(config)
  cfg.root_dir = root_dir(bufnr, config.root_markers)
  cfg.root_markers, cfg.filetypes = nil, nil
  cfg.on_attach = config.on_attach
  if vim.lsp.start then -- 0.8+: reuses a running client with the same name and root
    return vim.lsp.start(cfg, { bufnr = bufnr })
  end
  local client = legacy_client_id and vim.lsp.get_client_by_id(legacy_client_id)
  if not client or client.is_stopped() then
    legacy_client_id = vim.lsp.start_client(cfg)
  end
  if legacy_client_id then
    vim.lsp.buf_attach_client(bufnr, legacy_client_id)
  end
  return legacy_client_id
end

--- The running codegemma client, if any.
function M.client()
  local clients = vim.lsp.get_clients and vim.lsp.get_clients({ name = M.name }) or vim.lsp.get_active_clients()
  for _, client in pairs(clients) do
    if client.name == M.name then
      return client
    end
  end
end

--- Ask the server for `codegemma/status`; `callback(err, status)`.
function M.status(callback)
  local client = M.client()
  if not client then
    return callback('codegemma-lsp is not running', nil)
  end
  local function handler(err, result)
    callback(err, result)
  end
  if has_method_calls then
    client:request('codegemma/status', {}, handler, 0)
  else
    client.request('codegemma/status', {}, handler, 0)
  end
end

--- Change server settings at run time, e.g. `set_settings({ model = 'qwen2.5-coder-0.5b-q4' })` (a new model
--- loads; request-time keys like maxTokens apply to the next completion).
function M.set_settings(settings)
  M.options = M.options or vim.deepcopy(M.defaults)
  M.options.settings = merge(M.options.settings or {}, settings)
  local client = M.client()
  if not client then
    return false
  end
  local params = { settings = { codegemma = M.options.settings } }
  if has_method_calls then
    client:notify('workspace/didChangeConfiguration', params)
  else
    client.notify('workspace/didChangeConfiguration', params)
  end
  return true
end

--- JSON null arrives as vim.NIL, which is truthy.
local function value(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

local function describe(status)
  local parts = { 'codegemma-lsp ' .. tostring(value(status.version)), 'state: ' .. tostring(value(status.state)) }
  local model = value(status.model)
  if model then
    table.insert(parts, 'model: ' .. tostring(value(model.alias) or value(model.path)))
  end
  local device = value(status.device)
  if device then
    table.insert(parts, 'device: ' .. tostring(value(device.offload)))
  end
  local last = value(status.last)
  if last then
    local ms, tokens = tonumber(value(last.latencyMs)) or 0, tonumber(value(last.generatedTokens)) or 0
    table.insert(parts, ('last: %d ms, %d tokens'):format(math.floor(ms + 0.5), tokens))
  end
  if value(status.error) then
    table.insert(parts, 'error: ' .. tostring(status.error))
  end
  return table.concat(parts, ' | ')
end

---@param opts? codegemma.Options
function M.setup(opts)
  local config
  config, opts = M.client_config(opts)
  M.options = opts
  if has_config then
    vim.lsp.config(M.name, config)
    vim.lsp.enable(M.name)
  else
    local group = vim.api.nvim_create_augroup('codegemma', { clear = true })
    vim.api.nvim_create_autocmd('FileType', {
      group = group,
      pattern = config.filetypes,
      callback = function(args)
        attach_legacy(config, args.buf)
      end,
    })
  end
  vim.api.nvim_create_user_command('CodegemmaStatus', function()
    M.status(function(err, status)
      vim.notify(err and ('codegemma: ' .. tostring(err.message or err)) or describe(status))
    end)
  end, { desc = 'Show the codegemma-lsp model state and last completion latency' })
end

M._describe = describe

return M
