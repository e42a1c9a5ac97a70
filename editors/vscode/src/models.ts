/**
 * `codegemma-lsp models list` / `models pull ALIAS` as child processes, with their output parsed into progress.
 * Node only (child_process), no `vscode` import.
 */
import { spawn } from 'node:child_process';

import type { ServerCommand } from './settings';

export interface ModelRow {
  alias: string;
  isDefault: boolean;
  family: string;
  params: string;
  quantization: string;
  size: string;
  onDisk: boolean;
}

/** Parses the table `models list` prints: a header row, then one aligned row per model. */
export function parseModelList(text: string): ModelRow[] {
  const rows: ModelRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cells = line.trim().split(/\s{2,}/);
    if (cells.length < 6) {
      continue;
    }
    const isDefault = cells[0].endsWith(' (default)');
    rows.push({
      alias: cells[0].replace(/ \(default\)$/, ''),
      isDefault,
      family: cells[1],
      params: cells[2],
      quantization: cells[3],
      size: cells[4],
      onDisk: cells[5] === 'yes',
    });
  }
  return rows;
}

/** The percentage in one progress line of `models pull` on a pipe ("ALIAS  0.16 GB / 1.63 GB   10.0%  …"). */
export function parsePercent(line: string): number | undefined {
  const match = /(\d{1,3}(?:\.\d+)?)%/.exec(line);
  if (!match) {
    return undefined;
  }
  const value = Number(match[1]);
  return value >= 0 && value <= 100 ? value : undefined;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  onStderrLine?: (line: string) => void;
  /** Resolves or fires when the run should stop; the child gets SIGTERM. */
  onCancel?: (kill: () => void) => void;
  env?: NodeJS.ProcessEnv;
}

/** Runs the server executable with `args` after its configured leading arguments. */
export function runServerCommand(server: ServerCommand, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(server.command, [...server.args, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      partial += chunk;
      const lines = partial.split(/\r?\n|\r/);
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim()) {
          options.onStderrLine?.(line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''));
        }
      }
    });
    options.onCancel?.(() => child.kill('SIGTERM'));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
