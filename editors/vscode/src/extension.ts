/**
 * CodeGemma for VS Code: starts `codegemma-lsp` over stdio with vscode-languageclient (whose inline completion
 * feature turns the server's `textDocument/inlineCompletion` answers into ghost text), forwards the settings,
 * shows the model state and last latency in the status bar, and offers restart / pull-model commands.
 */
import * as os from 'node:os';

import * as vscode from 'vscode';
import {
  CancellationTokenSource,
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';

import { parseModelList, parsePercent, runServerCommand, RunResult } from './models';
import { enabledFor, Getter, RESTART_KEYS, SERVER_KEYS, serverCommand, serverSettings } from './settings';
import { ServerStatus, statusView } from './status';

const SECTION = 'codegemma';
const STATUS_METHOD = 'codegemma/status';
const POLL_MS = 2000;
const STATUS_TIMEOUT_MS = 3000;

const config = (): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration(SECTION);
const get: Getter = (key) => config().get(key);

class Extension implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly output = vscode.window.createOutputChannel('CodeGemma', { log: true });
  private readonly statusItem = vscode.window.createStatusBarItem('codegemma.status', vscode.StatusBarAlignment.Right, 100);
  private lastStatus: ServerStatus | undefined;
  private polling = false;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.statusItem.name = 'CodeGemma';
    this.statusItem.command = 'codegemma.showStatus';
    this.render();
    this.statusItem.show();
    this.timer = setInterval(() => void this.refreshStatus(), POLL_MS);
  }

  // --- server lifecycle -----------------------------------------------------------------------------------

  async start(): Promise<void> {
    const server = serverCommand(get, os.homedir());
    // No `transport`: TransportKind.stdio would append `--stdio`, which codegemma-lsp does not take (stdio is its default).
    const serverOptions: ServerOptions = { command: server.command, args: server.args };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      initializationOptions: serverSettings(get),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (!enabledFor(document.languageId, get('enable'))) {
            return undefined;
          }
          const result = await next(document, position, context, token);
          void this.refreshStatus();
          return result;
        },
        provideCompletionItem: async (document, position, context, token, next) => {
          if (!get('completionMenu') || !enabledFor(document.languageId, get('enable'))) {
            return undefined;
          }
          return next(document, position, context, token);
        },
      },
    };
    const client = new LanguageClient('codegemma', 'CodeGemma', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState(() => void this.refreshStatus());
    try {
      await client.start();
    } catch (error) {
      this.output.appendLine(`could not start ${server.command}: ${error}`);
      const action = await vscode.window.showErrorMessage(
        `CodeGemma: could not start \`${server.command}\` (${error}). Install it with \`pip install codegemma-lsp\` ` +
          'or set codegemma.serverPath.',
        'Open Settings',
      );
      if (action === 'Open Settings') {
        void vscode.commands.executeCommand('workbench.action.openSettings', 'codegemma.serverPath');
      }
    }
    void this.refreshStatus();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.lastStatus = undefined;
    if (client) {
      try {
        await client.dispose(5000);
      } catch (error) {
        this.output.appendLine(`stopping the server: ${error}`);
      }
    }
    this.render();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async configurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration(SECTION)) {
      return;
    }
    if (RESTART_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
      await this.restart();
      return;
    }
    const client = this.client;
    if (client?.isRunning() && Object.values(SERVER_KEYS).some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
      // Only the server's own keys: it warns about anything else. A model change makes it load the new model.
      await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: serverSettings(get) } });
    }
    this.render();
  }

  // --- status bar ---------------------------------------------------------------------------------------

  async refreshStatus(): Promise<ServerStatus | undefined> {
    const client = this.client;
    if (!client || client.state !== State.Running) {
      this.render();
      return undefined;
    }
    if (this.polling) {
      return this.lastStatus;
    }
    this.polling = true;
    const source = new CancellationTokenSource();
    const timeout = setTimeout(() => source.cancel(), STATUS_TIMEOUT_MS);
    try {
      this.lastStatus = await client.sendRequest<ServerStatus>(STATUS_METHOD, {}, source.token);
    } catch {
      // Timed out or the server is going away: keep the last answer; the next poll asks again.
    } finally {
      clearTimeout(timeout);
      source.dispose();
      this.polling = false;
    }
    this.render();
    return this.lastStatus;
  }

  private render(): void {
    const running = this.client?.state === State.Running;
    const view = statusView(running ? this.lastStatus : undefined, running);
    const languageId = vscode.window.activeTextEditor?.document.languageId;
    let text = view.text;
    if (languageId && !enabledFor(languageId, get('enable'))) {
      text = `$(circle-slash) CodeGemma (off for ${languageId})`;
    }
    this.statusItem.text = text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  onActiveEditorChanged(): void {
    this.render();
  }

  // --- commands -----------------------------------------------------------------------------------------

  async showStatus(): Promise<void> {
    const status = await this.refreshStatus();
    const view = statusView(status, this.client?.state === State.Running);
    const items: (vscode.QuickPickItem & { run: () => unknown })[] = [
      { label: '$(debug-restart) Restart Server', run: () => this.restart() },
      { label: '$(cloud-download) Download (Pull) a Model…', run: () => this.pullModel() },
      { label: '$(gear) Open Settings', run: () => vscode.commands.executeCommand('workbench.action.openSettings', '@ext:codegemma-lsp.codegemma-lsp') },
      { label: '$(output) Show Log', run: () => this.output.show(true) },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: view.tooltip.split('\n').slice(0, -1).join(' · ') });
    await pick?.run();
  }

  async pullModel(requested?: unknown): Promise<RunResult | undefined> {
    const server = serverCommand(get, os.homedir());
    let alias = typeof requested === 'string' && requested.trim() ? requested.trim() : undefined;
    if (!alias) {
      alias = await this.askAlias(server);
    }
    if (!alias) {
      return undefined;
    }
    const target = alias;
    this.output.appendLine(`$ ${[server.command, ...server.args, 'models', 'pull', target].join(' ')}`);
    let result: RunResult;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `CodeGemma: downloading ${target}`, cancellable: true },
        (progress, token) => {
          let done = 0;
          return runServerCommand(server, ['models', 'pull', target], {
            onStderrLine: (line) => {
              this.output.appendLine(line);
              const percent = parsePercent(line);
              if (percent !== undefined && percent > done) {
                progress.report({ increment: percent - done, message: line.trim() });
                done = percent;
              } else {
                progress.report({ message: line.trim() });
              }
            },
            onCancel: (kill) => token.onCancellationRequested(kill),
          });
        },
      );
    } catch (error) {
      void vscode.window.showErrorMessage(`CodeGemma: could not run ${server.command}: ${error}`);
      return undefined;
    }
    if (result.code !== 0) {
      const why = result.stderr.trim().split('\n').pop() ?? `exit code ${result.code}`;
      void vscode.window.showErrorMessage(`CodeGemma: downloading ${target} failed: ${why}`);
      return result;
    }
    const path = result.stdout.trim().split('\n').pop() ?? '';
    this.output.appendLine(`${target} is at ${path}`);
    const current = get('model');
    const action = current === target ? 'Restart Server' : `Use ${target}`;
    void vscode.window.showInformationMessage(`CodeGemma: ${target} is ready.`, action).then(async (answer) => {
      if (answer === 'Restart Server') {
        await this.restart();
      } else if (answer) {
        await config().update('model', target, vscode.ConfigurationTarget.Global);
      }
    });
    return result;
  }

  private async askAlias(server: ReturnType<typeof serverCommand>): Promise<string | undefined> {
    try {
      const listed = await runServerCommand(server, ['models', 'list']);
      const rows = listed.code === 0 ? parseModelList(listed.stdout) : [];
      if (rows.length) {
        const pick = await vscode.window.showQuickPick(
          rows.map((row) => ({
            label: row.alias,
            description: `${row.family} ${row.params} ${row.quantization} · ${row.size}`,
            detail: [row.isDefault ? 'default' : '', row.onDisk ? 'already downloaded' : ''].filter(Boolean).join(', ') || undefined,
          })),
          { title: 'CodeGemma: model to download', placeHolder: 'registry alias' },
        );
        return pick?.label;
      }
    } catch (error) {
      this.output.appendLine(`models list: ${error}`);
    }
    return vscode.window.showInputBox({ title: 'CodeGemma: model alias to download', value: String(get('model') ?? '') });
  }

  dispose(): void {
    clearInterval(this.timer);
    this.statusItem.dispose();
    this.output.dispose();
  }
}

let extension: Extension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<{ status: () => Promise<ServerStatus | undefined> }> {
  const ext = new Extension();
  extension = ext;
  context.subscriptions.push(
    ext,
    vscode.commands.registerCommand('codegemma.restartServer', () => ext.restart()),
    vscode.commands.registerCommand('codegemma.pullModel', (alias?: unknown) => ext.pullModel(alias)),
    vscode.commands.registerCommand('codegemma.showStatus', () => ext.showStatus()),
    vscode.workspace.onDidChangeConfiguration((event) => ext.configurationChanged(event)),
    vscode.window.onDidChangeActiveTextEditor(() => ext.onActiveEditorChanged()),
  );
  await ext.start();
  return { status: () => ext.refreshStatus() };
}

export async function deactivate(): Promise<void> {
  await extension?.stop();
  extension = undefined;
}
