-- Headless end-to-end check of the plugin against the real server, driven by tests/test_editors_neovim.py:
--
--   CODEGEMMA_E2E_CMD='["codegemma-lsp"]' CODEGEMMA_E2E_SETTINGS='{"model": "…"}' CODEGEMMA_E2E_FILE=/tmp/fib.py \
--   CODEGEMMA_E2E_LINE=4 CODEGEMMA_E2E_COL=14 CODEGEMMA_E2E_OUT=/tmp/out.json \
--   nvim --headless -n -u NONE -i NONE --cmd 'set rtp^=editors/neovim' -c 'luafile editors/neovim/test/e2e.lua'
--
-- Opens the file through the plugin's own setup (FileType → client start → attach), waits for the model, then
-- asks for a completion at LINE (1-based) / COL (0-based, bytes), applies the item's textEdit, and sends a raw
-- textDocument/inlineCompletion request at the same place. Everything it saw goes to OUT as JSON; it never
-- asserts itself, so the Python test reports what went wrong.
local out = { steps = {} }

local function env(name, default)
  local value = os.getenv(name)
  if value == nil or value == '' then
    return default
  end
  return value
end

local modern = vim.fn.has('nvim-0.11') == 1 -- client:method() calls; before 0.11 client.method()

local function is_stopped(client)
  if modern then
    return client:is_stopped()
  end
  return client.is_stopped()
end

local function step(name)
  table.insert(out.steps, name)
end

local function main()
  local codegemma = require('codegemma')
  vim.cmd('filetype on')
  codegemma.setup({
    cmd = vim.fn.json_decode(env('CODEGEMMA_E2E_CMD', '["codegemma-lsp"]')),
    settings = vim.fn.json_decode(env('CODEGEMMA_E2E_SETTINGS', '{}')),
    filetypes = { 'python' },
    autotrigger = false,
  })
  step('setup')
  out.nvim = vim.version()
  vim.cmd('edit ' .. vim.fn.fnameescape(assert(os.getenv('CODEGEMMA_E2E_FILE'))))
  local bufnr = vim.api.nvim_get_current_buf()
  out.filetype = vim.bo[bufnr].filetype

  local client
  vim.wait(30000, function()
    client = codegemma.client()
    return client ~= nil and client.initialized ~= false and not is_stopped(client)
  end, 50)
  if not client then
    error('the plugin started no client for ' .. out.filetype .. ' buffer')
  end
  step('client')
  out.attached = vim.lsp.buf_is_attached(bufnr, client.id)
  out.offset_encoding = client.offset_encoding
  out.omnifunc = vim.bo[bufnr].omnifunc

  local status
  local timeout_ms = tonumber(env('CODEGEMMA_E2E_TIMEOUT_MS', '180000'))
  local started = vim.loop.hrtime()
  while (vim.loop.hrtime() - started) / 1e6 < timeout_ms do
    local done = false
    codegemma.status(function(err, result)
      done = true
      status = not err and result or status
    end)
    -- A response can be lost while the server loads the model (llama.cpp silencing fd 1); ask again.
    vim.wait(2000, function()
      return done
    end, 10)
    if status and (status.state == 'ready' or status.state == 'error') then
      break
    end
    vim.wait(200)
  end
  out.load_ms = (vim.loop.hrtime() - started) / 1e6
  out.status = status
  out.described = status and codegemma._describe(status)
  if not status or status.state ~= 'ready' then
    error('model not ready: ' .. vim.inspect(status))
  end
  step('ready')
  out.buffer = vim.b[bufnr].codegemma -- set by the plugin's on_attach
  out.path = vim.lsp.config and 'vim.lsp.enable' or (vim.lsp.start and 'vim.lsp.start' or 'start_client')

  local line = tonumber(assert(os.getenv('CODEGEMMA_E2E_LINE')))
  local col = tonumber(assert(os.getenv('CODEGEMMA_E2E_COL')))
  local original = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  vim.api.nvim_win_set_cursor(0, { line, col })
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = line - 1, character = col },
  }

  -- The completion fallback: what omnifunc, nvim-cmp and vim.lsp.completion show.
  local t0 = vim.loop.hrtime()
  local responses, err = vim.lsp.buf_request_sync(bufnr, 'textDocument/completion', params, 120000)
  out.completion_ms = (vim.loop.hrtime() - t0) / 1e6
  if not responses then
    error('completion request failed: ' .. tostring(err))
  end
  local response = responses[client.id] or {}
  out.completion = response.result
  out.completion_error = response.error or response.err
  local items = response.result and (response.result.items or response.result) or {}
  local item = items[1]
  if item and item.textEdit then
    vim.lsp.util.apply_text_edits({ item.textEdit }, bufnr, client.offset_encoding)
    out.applied_line = vim.api.nvim_buf_get_lines(bufnr, line - 1, line, false)[1]
    out.applied_buffer = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  end
  step('completion')

  -- Back to the original text, then the raw inline completion request (ghost text on 0.12+).
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, original)
  local inline_params = vim.deepcopy(params)
  inline_params.context = { triggerKind = 1 } -- Invoked
  t0 = vim.loop.hrtime()
  responses, err = vim.lsp.buf_request_sync(bufnr, 'textDocument/inlineCompletion', inline_params, 120000)
  out.inline_ms = (vim.loop.hrtime() - t0) / 1e6
  if not responses then
    error('inline completion request failed: ' .. tostring(err))
  end
  response = responses[client.id] or {}
  out.inline = response.result
  out.inline_error = response.error or response.err
  out.inline_line_text = original[line]
  step('inline')

  -- Settings changed at run time reach the server (workspace/didChangeConfiguration).
  out.set_settings = codegemma.set_settings({ maxTokens = 32 })
  local deadline = vim.loop.hrtime() + 10e9
  while vim.loop.hrtime() < deadline do
    local done, latest = false, nil
    codegemma.status(function(err, result)
      done, latest = true, not err and result or nil
    end)
    vim.wait(2000, function()
      return done
    end, 10)
    out.max_tokens_after = latest and latest.config and latest.config.maxTokens
    if out.max_tokens_after == 32 then
      break
    end
    vim.wait(100)
  end
  step('settings')

  vim.lsp.stop_client(client.id)
  vim.wait(5000, function()
    return is_stopped(client)
  end, 50)
  step('stopped')
end

local ok, err = xpcall(main, debug.traceback)
out.ok = ok
out.error = not ok and tostring(err) or nil
local path = os.getenv('CODEGEMMA_E2E_OUT')
local text = vim.fn.json_encode(out)
if path then
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
else
  io.stdout:write(text .. '\n')
end
vim.cmd('qall!')
