import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatLatency, statusView } from '../src/status';

test('ready status shows the model alias and the last latency', () => {
  const view = statusView(
    {
      state: 'ready',
      version: '0.1.0',
      config: { model: 'qwen2.5-coder-0.5b-q4' },
      model: { alias: 'qwen2.5-coder-0.5b-q4', path: '/m/q.gguf', quantization: 'Q4_K_M', template: 'qwen2.5-coder' },
      device: { offload: 'cpu', nGpuLayers: 0 },
      last: { latencyMs: 1234.5, generatedTokens: 22, promptTokens: 41, reusedTokens: 40, stopReason: 'stop_text' },
    },
    true,
  );
  assert.equal(view.text, '$(sparkle) qwen2.5-coder-0.5b-q4 · 1.2 s');
  assert.match(view.tooltip, /Model: qwen2.5-coder-0.5b-q4 Q4_K_M, template qwen2.5-coder/);
  assert.match(view.tooltip, /Last completion: 1.2 s, 22 tokens generated, 40\/41 prompt tokens from cache/);
  assert.equal(view.severity, 'none');
});

test('loading and error states say so; a path model shows its file name', () => {
  assert.equal(statusView({ state: 'loading', config: { model: '/models/my.gguf' } }, true).text, '$(loading~spin) my.gguf · loading');
  const error = statusView({ state: 'error', error: 'no such file', config: { model: 'x' } }, true);
  assert.equal(error.severity, 'error');
  assert.match(error.tooltip, /Error: no such file/);
});

test('a stopped server is a warning', () => {
  const view = statusView(undefined, false);
  assert.equal(view.severity, 'warning');
  assert.match(view.text, /CodeGemma/);
});

test('latency formatting', () => {
  assert.equal(formatLatency(312.4), '312 ms');
  assert.equal(formatLatency(1500), '1.5 s');
  assert.equal(formatLatency(25_000), '25 s');
  assert.equal(formatLatency(undefined), undefined);
});
