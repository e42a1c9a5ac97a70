import assert from 'node:assert/strict';
import { test } from 'node:test';

import { enabledFor, serverCommand, serverSettings } from '../src/settings';

const from = (values: Record<string, unknown>) => (key: string) => values[key];

test('server settings nest context keys and keep only the server keys', () => {
  const settings = serverSettings(
    from({
      model: 'qwen2.5-coder-0.5b-q4',
      nGpuLayers: 0,
      maxTokens: 48,
      'context.crossFile': false,
      'context.maxTokens': 512,
      threads: null,
      serverPath: '/opt/codegemma-lsp',
      enable: { '*': true },
    }),
  );
  assert.deepEqual(settings, {
    model: 'qwen2.5-coder-0.5b-q4',
    nGpuLayers: 0,
    maxTokens: 48,
    threads: null,
    context: { crossFile: false, maxTokens: 512 },
  });
});

test('remote backend settings go to the server as flat keys; an unset model is left to the server', () => {
  const settings = serverSettings(
    from({ backend: 'http://gpu-box:8080', backendKind: 'llama-server', backendModel: null, backendInfill: true }),
  );
  assert.deepEqual(settings, { backend: 'http://gpu-box:8080', backendKind: 'llama-server', backendInfill: true });
});

test('unset settings are left to the server', () => {
  assert.deepEqual(serverSettings(from({})), {});
});

test('server command expands ~ and keeps leading arguments', () => {
  assert.deepEqual(serverCommand(from({ serverPath: '~/venv/bin/python', serverArgs: ['-m', 'codegemma_lsp', 3] }), '/home/u'), {
    command: '/home/u/venv/bin/python',
    args: ['-m', 'codegemma_lsp'],
  });
  assert.deepEqual(serverCommand(from({ serverPath: '  ' }), '/home/u'), { command: 'codegemma-lsp', args: [] });
});

test('per-language enable: own entry, then *, then on', () => {
  const enable = { '*': true, markdown: false };
  assert.equal(enabledFor('python', enable), true);
  assert.equal(enabledFor('markdown', enable), false);
  assert.equal(enabledFor('rust', { '*': false, rust: true }), true);
  assert.equal(enabledFor('go', { '*': false }), false);
  assert.equal(enabledFor('go', undefined), true);
  assert.equal(enabledFor('go', { go: 'yes' }), true);
});
