-- Neovim 0.11+ native config: with this folder on 'runtimepath', `vim.lsp.enable('codegemma')` is all it takes
-- (or `require('codegemma').setup({...})` to pass server settings and keys in one place). nvim-lspconfig users
-- on 0.11+ get the same through its vim.lsp.config integration.
return (require('codegemma').client_config())
