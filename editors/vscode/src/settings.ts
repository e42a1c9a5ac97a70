/**
 * VS Code settings -> what the server and the client need. Pure: no `vscode` import, so `node --test` covers it.
 *
 * The server's settings keys are a public contract (codegemma_lsp/config.py KEYS); the extension sends exactly
 * those, nested the way the server flattens them, and keeps its own client-only settings (server path, per-language
 * enable, completion menu) to itself so the server never warns about unknown keys.
 */

/** Reads one `codegemma.*` setting (the effective value: user, workspace or the contributed default). */
export type Getter = (key: string) => unknown;

export interface ServerSettings {
  model: string;
  nGpuLayers: number;
  maxTokens: number;
  prefixTokens: number;
  suffixTokens: number;
  fimLayout: string;
  timeBudgetMs: number;
  speculate: boolean;
  ctxSize: number;
  threads: number | null;
  context: { crossFile: boolean; maxTokens: number };
  backend: string;
  backendKind: string;
  backendModel: string | null;
  backendApiKeyEnv: string;
  backendTokenizer: string | null;
  backendInfill: boolean;
}

/** Server keys as the server names them, and the VS Code setting each one comes from (under `codegemma.`). */
export const SERVER_KEYS: Record<string, string> = {
  model: 'model',
  nGpuLayers: 'nGpuLayers',
  maxTokens: 'maxTokens',
  prefixTokens: 'prefixTokens',
  suffixTokens: 'suffixTokens',
  fimLayout: 'fimLayout',
  timeBudgetMs: 'timeBudgetMs',
  speculate: 'speculate',
  ctxSize: 'ctxSize',
  threads: 'threads',
  'context.crossFile': 'context.crossFile',
  'context.maxTokens': 'context.maxTokens',
  backend: 'backend',
  backendKind: 'backendKind',
  backendModel: 'backendModel',
  backendApiKeyEnv: 'backendApiKeyEnv',
  backendTokenizer: 'backendTokenizer',
  backendInfill: 'backendInfill',
};

/** Settings whose change needs a new server process rather than `workspace/didChangeConfiguration`. */
export const RESTART_KEYS = ['serverPath', 'serverArgs', 'trace.server'];

/** The `initializationOptions` / `didChangeConfiguration` payload; unset or wrongly typed values are left out
 * so the server keeps its own default. */
export function serverSettings(get: Getter): Partial<ServerSettings> {
  const out: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SERVER_KEYS)) {
    const value = get(setting);
    if (value === undefined || (value === null && key !== 'threads')) {
      continue;
    }
    const path = key.split('.');
    let node = out;
    for (const part of path.slice(0, -1)) {
      node = (node[part] ??= {}) as Record<string, unknown>;
    }
    node[path[path.length - 1]] = value;
  }
  return out as Partial<ServerSettings>;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

/** The server executable and its leading arguments; `~` at the start of the path means the home folder. */
export function serverCommand(get: Getter, home: string): ServerCommand {
  const raw = get('serverPath');
  let command = typeof raw === 'string' && raw.trim() ? raw.trim() : 'codegemma-lsp';
  if (command === '~' || command.startsWith('~/')) {
    command = home + command.slice(1);
  }
  const rawArgs = get('serverArgs');
  const args = Array.isArray(rawArgs) ? rawArgs.filter((a): a is string => typeof a === 'string') : [];
  return { command, args };
}

/** `codegemma.enable`: the language's own entry, else `*`, else on. */
export function enabledFor(languageId: string, enable: unknown): boolean {
  if (enable === null || typeof enable !== 'object') {
    return true;
  }
  const map = enable as Record<string, unknown>;
  const own = map[languageId];
  if (typeof own === 'boolean') {
    return own;
  }
  const all = map['*'];
  return typeof all === 'boolean' ? all : true;
}
