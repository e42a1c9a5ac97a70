/**
 * `codegemma/status` -> the status bar item's text and tooltip. Pure: no `vscode` import.
 *
 * The server answers with {state, error, version, config, model?, device?, last?}; `last.latencyMs` is the wall
 * time of the latest completion, measured by the server.
 */

export interface ServerStatus {
  state: 'idle' | 'loading' | 'ready' | 'error' | string;
  error?: string | null;
  version?: string;
  config?: { model?: string };
  model?: { alias?: string | null; path?: string; quantization?: string | null; template?: string };
  device?: { offload?: string; nGpuLayers?: number };
  last?: { latencyMs?: number; generatedTokens?: number; promptTokens?: number; reusedTokens?: number; stopReason?: string };
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** 'error' and 'warning' map to the status bar's error/warning background colours. */
  severity: 'none' | 'warning' | 'error';
}

const ICONS: Record<string, string> = {
  idle: '$(circle-outline)',
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  error: '$(error)',
};

function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

/** A short model name: the registry alias, else the file name. */
export function modelName(status: ServerStatus): string {
  const alias = status.model?.alias;
  if (alias) {
    return alias;
  }
  if (status.model?.path) {
    return basename(status.model.path);
  }
  const configured = status.config?.model ?? '';
  return configured.includes('/') || configured.includes('\\') ? basename(configured) : configured;
}

export function formatLatency(ms: number | undefined): string | undefined {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) {
    return undefined;
  }
  return ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** The status bar item for a status answer; `undefined` means the server is not running. */
export function statusView(status: ServerStatus | undefined, running: boolean): StatusView {
  if (!running || status === undefined) {
    return {
      text: '$(circle-slash) CodeGemma',
      tooltip: running ? 'CodeGemma: waiting for the server' : 'CodeGemma: server not running — click for actions',
      severity: running ? 'none' : 'warning',
    };
  }
  const icon = ICONS[status.state] ?? '$(question)';
  const name = modelName(status);
  const latency = formatLatency(status.last?.latencyMs);
  let text = `${icon} ${name || 'CodeGemma'}`;
  if (status.state === 'ready' && latency) {
    text += ` · ${latency}`;
  } else if (status.state !== 'ready') {
    text += ` · ${status.state}`;
  }
  const lines = [`CodeGemma — ${status.state}${status.version ? ` (codegemma-lsp ${status.version})` : ''}`];
  if (name) {
    const quant = status.model?.quantization ? ` ${status.model.quantization}` : '';
    const template = status.model?.template ? `, template ${status.model.template}` : '';
    lines.push(`Model: ${name}${quant}${template}`);
  }
  if (status.device?.offload) {
    lines.push(`Device: ${status.device.offload}${status.device.offload === 'gpu' ? ` (${status.device.nGpuLayers} layers)` : ''}`);
  }
  if (status.last) {
    const l = status.last;
    lines.push(
      `Last completion: ${latency ?? '?'}, ${l.generatedTokens ?? '?'} tokens generated, ` +
        `${l.reusedTokens ?? 0}/${l.promptTokens ?? '?'} prompt tokens from cache` +
        (l.stopReason ? `, stopped by ${l.stopReason}` : ''),
    );
  }
  if (status.error) {
    lines.push(`Error: ${status.error}`);
  }
  lines.push('Click for actions');
  return {
    text,
    tooltip: lines.join('\n'),
    severity: status.state === 'error' ? 'error' : 'none',
  };
}
