#!/usr/bin/env node
// End-to-end test of the extension in a real VS Code UI: code-server (VS Code 1.100 in the browser) with the
// packaged .vsix installed, driven in Debian's Chromium by playwright-core. Opens a Python file, types the start
// of a line, waits for ghost text from the real codegemma-lsp server, takes a screenshot, accepts with Tab,
// saves with Ctrl+S and reads the saved file back; then runs the extension's "Download (Pull) a Model" and
// "Restart Server" commands from the command palette. Prints one JSON object (and writes it to
// $OUT/result.json); the assertions live in tests/test_editors_vscode.py.
//
// Environment:
//   CODEGEMMA_SERVER       server executable (default: codegemma-lsp on PATH)
//   CODEGEMMA_SERVER_ARGS  JSON array of leading arguments, e.g. ["-m", "codegemma_lsp"]
//   CODEGEMMA_MODEL        model alias or path (default qwen2.5-coder-0.5b-q4)
//   CODEGEMMA_VSIX         the packaged extension (default ../codegemma-lsp.vsix)
//   OUT                    folder for result.json, the screenshot and logs (default: a temp folder)
//   CHROMIUM               browser executable (default /usr/bin/chromium)
//   E2E_TIMEOUT_MS         how long to wait for ghost text (default 120000)
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, createWriteStream } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const codeServer = path.join(here, 'node_modules', '.bin', 'code-server');
const vsix = process.env.CODEGEMMA_VSIX ?? path.join(here, '..', 'codegemma-lsp.vsix');
const out = process.env.OUT ?? mkdtempSync(path.join(os.tmpdir(), 'codegemma-e2e-out-'));
const timeoutMs = Number(process.env.E2E_TIMEOUT_MS ?? 120000);
mkdirSync(out, { recursive: true });

const SOURCE = [
  'def fibonacci(n):',
  '    """Return the n-th Fibonacci number."""',
  '    if n < 2:',
  '        return n',
  '',
  '',
  '',
  'print(fibonacci(10))',
  '',
].join('\n');
const HOLE_LINE = 5; // 1-based, empty in SOURCE
const TYPED = '    return fib';

const result = { ok: false, steps: [], timingsMs: {} };
const t0 = Date.now();
const step = (name) => {
  result.steps.push(name);
  result.timingsMs[name] = Date.now() - t0;
  console.error(`[e2e ${((Date.now() - t0) / 1000).toFixed(1)}s] ${name}`);
};

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) {
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

async function main() {
  const work = mkdtempSync(path.join(os.tmpdir(), 'codegemma-e2e-'));
  const userData = path.join(work, 'user-data');
  const extensions = path.join(work, 'extensions');
  const workspace = path.join(work, 'demo');
  mkdirSync(path.join(userData, 'User'), { recursive: true });
  mkdirSync(workspace, { recursive: true });
  const file = path.join(workspace, 'fib.py');
  writeFileSync(file, SOURCE);

  const settings = {
    'codegemma.serverPath': process.env.CODEGEMMA_SERVER ?? 'codegemma-lsp',
    'codegemma.serverArgs': JSON.parse(process.env.CODEGEMMA_SERVER_ARGS ?? '[]'),
    'codegemma.model': process.env.CODEGEMMA_MODEL ?? 'qwen2.5-coder-0.5b-q4',
    'codegemma.maxTokens': 48,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.colorTheme': 'Default Dark Modern',
    'chat.commandCenter.enabled': false,
    'git.enabled': false,
    'files.autoSave': 'off',
    'editor.fontSize': 15,
    'editor.minimap.enabled': false,
    'editor.inlineSuggest.enabled': true,
    // Tab must accept the ghost text, not a suggestion widget item.
    'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
    'editor.suggestOnTriggerCharacters': false,
  };
  writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));

  const install = spawnSync(codeServer, ['--extensions-dir', extensions, '--user-data-dir', userData, '--install-extension', vsix, '--force'], {
    encoding: 'utf8',
  });
  if (install.status !== 0) {
    throw new Error(`installing ${vsix} failed: ${install.stdout}\n${install.stderr}`);
  }
  step('extension installed');

  const port = await freePort();
  const config = path.join(work, 'config.yaml');
  writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
  const log = createWriteStream(path.join(out, 'code-server.log'));
  const server = spawn(
    codeServer,
    [
      '--config', config,
      '--user-data-dir', userData,
      '--extensions-dir', extensions,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      workspace,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CS_DISABLE_FILE_DOWNLOADS: 'true' } },
  );
  server.stdout.pipe(log);
  server.stderr.pipe(log);
  let browser;
  let page;
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60000);
    step('code-server up');

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    page.on('console', (message) => {
      if (message.type() === 'error') {
        console.error(`[browser] ${message.text()}`);
      }
    });
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
    step('workbench loaded');

    // Open fib.py from the Explorer.
    const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'fib.py' });
    await row.first().waitFor({ timeout: 60000 });
    await row.first().click();
    const editor = page.locator('.editor-instance .monaco-editor').first();
    await editor.waitFor({ timeout: 30000 });
    await page.locator('.view-lines', { hasText: 'fibonacci' }).first().waitFor({ timeout: 30000 });
    step('file opened');

    // The server is ready once the extension's status bar item (fed by codegemma/status) shows the model, idle.
    const STATUS_ID = 'codegemma-lsp.codegemma-lsp.codegemma.status';
    const status = page.locator(`[id="${STATUS_ID}"]`);
    await status.waitFor({ timeout: 30000 });
    await page.waitForFunction(
      (id) => {
        const text = document.getElementById(id)?.textContent ?? '';
        return /qwen/.test(text) && !/loading|error|idle/.test(text);
      },
      STATUS_ID,
      { timeout: timeoutMs },
    );
    result.statusBefore = (await status.textContent())?.trim();
    step('model ready');

    // Go to the empty line and type the start of the recursion.
    await page.locator('.view-lines').first().click();
    await page.keyboard.press('Control+g');
    await page.keyboard.type(String(HOLE_LINE));
    await page.keyboard.press('Enter');
    await page.keyboard.type(TYPED, { delay: 40 });
    step('typed');

    const ghost = page.locator('.ghost-text-decoration, .ghost-text').first();
    await ghost.waitFor({ state: 'visible', timeout: timeoutMs });
    // Monaco renders spaces in decorations as no-break spaces.
    result.ghostText = (await page.locator('.ghost-text-decoration, .ghost-text').allTextContents()).join('').replace(/\u00a0/g, ' ');
    step('ghost text shown');

    // Let the status bar pick up the latency of this completion, then take the README screenshot.
    await page
      .waitForFunction((id) => /·\s*\d/.test(document.getElementById(id)?.textContent ?? ''), STATUS_ID, { timeout: 15000 })
      .catch(() => undefined);
    result.statusAfter = (await status.textContent())?.trim();
    result.statusItems = await page.evaluate(() =>
      [...document.querySelectorAll('.statusbar-item')].map((e) => ({ id: e.id, text: (e.textContent ?? '').trim() })),
    );
    result.ghostVisibleAtScreenshot = await ghost.isVisible();
    await page.screenshot({ path: path.join(out, 'vscode-ghost-text.png') });
    step('screenshot');

    await page.keyboard.press('Tab');
    await page.waitForFunction(
      (typed) => [...document.querySelectorAll('.view-line')].some((e) => (e.textContent ?? '').replace(/\u00a0/g, ' ').startsWith(typed) && (e.textContent ?? '').length > typed.length),
      TYPED,
      { timeout: 15000 },
    );
    step('accepted');
    await page.keyboard.press('Control+s');
    const deadline = Date.now() + 15000;
    let saved = readFileSync(file, 'utf8');
    while (saved === SOURCE && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      saved = readFileSync(file, 'utf8');
    }
    result.savedText = saved;
    result.savedLine = saved.split('\n')[HOLE_LINE - 1];
    step('saved');
    await page.screenshot({ path: path.join(out, 'vscode-accepted.png') });

    // Command: pull a model. The quick pick lists `codegemma-lsp models list`; the stand-in is on disk already, so
    // `models pull` verifies it and returns, and the extension says it is ready.
    const runCommand = async (title) => {
      await page.keyboard.press('F1');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible', timeout: 10000 });
      await input.fill(`>${title}`);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 10000 });
      await page.keyboard.press('Enter');
    };
    await runCommand('CodeGemma: Download (Pull) a Model');
    const alias = process.env.CODEGEMMA_MODEL ?? 'qwen2.5-coder-0.5b-q4';
    const pickRow = page.locator('.quick-input-list .monaco-list-row', { hasText: alias }).first();
    await pickRow.waitFor({ timeout: 30000 });
    result.pullChoices = (await page.locator('.quick-input-list .monaco-list-row .label-name').allTextContents()).map((t) => t.trim());
    await page.locator('.quick-input-widget input').fill(alias);
    await page.keyboard.press('Enter');
    const ready = page.locator('.notification-list-item-message', { hasText: `${alias} is ready` }).first();
    await ready.waitFor({ timeout: 60000 });
    result.pullNotification = (await ready.textContent())?.trim();
    step('pulled');

    // Command: restart the server; the status bar goes through loading and comes back ready (no latency yet).
    await runCommand('CodeGemma: Restart Server');
    await page.waitForFunction(
      (id) => {
        const text = document.getElementById(id)?.textContent ?? '';
        return /qwen/.test(text) && !/loading|error|idle|·/.test(text);
      },
      STATUS_ID,
      { timeout: timeoutMs },
    );
    result.statusAfterRestart = (await status.textContent())?.trim();
    step('restarted');
    result.ok = true;
  } catch (error) {
    // What the window showed when it went wrong, for the test's failure message.
    result.statusAtFailure = await page?.evaluate(() =>
      [...document.querySelectorAll('.statusbar-item')].map((e) => (e.textContent ?? '').trim()).filter(Boolean).join(' | '),
    ).catch(() => undefined);
    result.notifications = await page?.evaluate(() =>
      [...document.querySelectorAll('.notification-list-item-message')].map((e) => (e.textContent ?? '').trim()),
    ).catch(() => undefined);
    await page?.screenshot({ path: path.join(out, 'failure.png') }).catch(() => undefined);
    throw error;
  } finally {
    await browser?.close().catch(() => undefined);
    server.kill('SIGTERM');
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        server.kill('SIGKILL');
        resolve();
      }, 5000);
      server.on('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

try {
  await main();
} catch (error) {
  result.error = String(error?.stack ?? error);
}
result.out = out;
writeFileSync(path.join(out, 'result.json'), JSON.stringify(result, null, 2));
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
