import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseModelList, parsePercent, runServerCommand } from '../src/models';

test('parses the models list table', () => {
  const text = [
    'ALIAS                   FAMILY     PARAMS  QUANT   SIZE      ON DISK',
    '2b-q4 (default)         codegemma  2b      Q4_K_M  ~1.63 GB  no',
    'qwen2.5-coder-0.5b-q4   qwen2.5    0.5b    Q4_K_M  0.40 GB   yes',
    '',
  ].join('\n');
  assert.deepEqual(parseModelList(text), [
    { alias: '2b-q4', isDefault: true, family: 'codegemma', params: '2b', quantization: 'Q4_K_M', size: '~1.63 GB', onDisk: false },
    { alias: 'qwen2.5-coder-0.5b-q4', isDefault: false, family: 'qwen2.5', params: '0.5b', quantization: 'Q4_K_M', size: '0.40 GB', onDisk: true },
  ]);
});

test('reads the percentage of a pull progress line', () => {
  assert.equal(parsePercent('2b-q4  0.16 GB / 1.63 GB   10.0%  12.3 MB/s'), 10);
  assert.equal(parsePercent('2b-q4  1.63 GB / 1.63 GB  100.0%  12.3 MB/s'), 100);
  assert.equal(parsePercent('warning: no checksum is known'), undefined);
});

test('runs a command after the leading arguments and splits stderr into lines', async () => {
  const lines: string[] = [];
  const result = await runServerCommand(
    { command: process.execPath, args: ['-e', 'process.stderr.write("a 10%\\r\\x1b[2Kb 20%\\nc\\n"); console.log(process.argv.slice(1).join(","))'] },
    ['models', 'pull'],
    { onStderrLine: (line) => lines.push(line) },
  );
  assert.equal(result.code, 0);
  assert.equal(result.stdout.trim(), 'models,pull');
  assert.deepEqual(lines, ['a 10%', 'b 20%', 'c']);
});
