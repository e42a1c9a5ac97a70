"""The VS Code extension (editors/vscode): its settings against the server's keys, the TypeScript build with its
unit tests, the .vsix, and an end-to-end run in a real VS Code UI (code-server in Debian's Chromium, driven by
playwright-core) with ghost text from the real server on the 0.5B stand-in.

The node parts need `bash editors/setup.sh` first; without it they skip, unless CODEGEMMA_REQUIRE_EDITORS=1 (CI)
turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from codegemma_lsp.config import KEYS, Config
from tests.conftest import STAND_IN

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "editors" / "vscode"
E2E = EXTENSION / "e2e"
VSIX = EXTENSION / "codegemma-lsp.vsix"
TYPED = "    return fib"
# The keys every editor setup exposes (editors/README.md); the server may have more (benchmark-only ones).
EDITOR_KEYS = ("model", "nGpuLayers", "maxTokens", "timeBudgetMs", "prefixTokens", "suffixTokens", "fimLayout",
               "ctxSize", "threads", "context.crossFile", "context.maxTokens", "speculate")
# VS Code also forwards the remote-backend keys (a team's inference server; editors/vscode/README.md).
REMOTE_KEYS = ("backend", "backendKind", "backendModel", "backendApiKeyEnv", "backendTokenizer", "backendInfill")
RECURSION = re.compile(r"fibonacci\(\s*n\s*-\s*[12]\s*\)")


def manifest() -> dict:
    return json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))


def need(path: Path | str | None, what: str) -> None:
    if path is None or not Path(path).exists():
        message = f"{what} is not installed (run `bash editors/setup.sh`)"
        if os.environ.get("CODEGEMMA_REQUIRE_EDITORS") == "1":
            pytest.fail(message)
        pytest.skip(message)


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(["npm", *args], cwd=EXTENSION, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "npm_config_update_notifier": "false"})
    assert done.returncode == 0, f"npm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def default_of(config: Config, key: str):
    value = config
    for attr in KEYS[key][0]:
        value = getattr(value, attr)
    return value


def test_settings_cover_the_server_keys_with_the_server_defaults():
    properties = manifest()["contributes"]["configuration"]["properties"]
    defaults = Config()
    assert set(EDITOR_KEYS) | set(REMOTE_KEYS) <= set(KEYS)
    for key in EDITOR_KEYS + REMOTE_KEYS:
        setting = properties.get(f"codegemma.{key}")
        assert setting is not None, f"codegemma.{key} is not a VS Code setting"
        assert setting["default"] == default_of(defaults, key), key
    # The TypeScript side forwards exactly those keys (and nothing client-only) to the server.
    source = (EXTENSION / "src" / "settings.ts").read_text(encoding="utf-8")
    start = source.index("export const SERVER_KEYS")
    forwarded = set(re.findall(r"^\s+'?([\w.]+)'?: '[\w.]+',$", source[start: source.index("};", start)], re.M))
    assert forwarded == set(EDITOR_KEYS) | set(REMOTE_KEYS)
    client_only = {"serverPath", "serverArgs", "enable", "completionMenu", "trace.server"}
    assert {name.removeprefix("codegemma.") for name in properties} == set(EDITOR_KEYS) | set(REMOTE_KEYS) | client_only


def test_manifest_contributes_commands_and_uses_languageclient_10():
    data = manifest()
    commands = {c["command"] for c in data["contributes"]["commands"]}
    assert commands == {"codegemma.restartServer", "codegemma.pullModel", "codegemma.showStatus"}
    assert re.match(r"\^?1\d\.", data["dependencies"]["vscode-languageclient"])
    tsconfig = json.loads((EXTENSION / "tsconfig.json").read_text(encoding="utf-8"))
    assert tsconfig["compilerOptions"]["module"] == "node16"


@pytest.fixture(scope="module")
def vsix() -> Path:
    """Compile, run the node unit tests and package the .vsix (offline) once for this module."""
    need(shutil.which("npm"), "npm")
    need(EXTENSION / "node_modules" / "vscode-languageclient", "the extension's node_modules")
    npm("run", "compile")
    npm("test")
    VSIX.unlink(missing_ok=True)
    npm("run", "package")
    assert VSIX.exists()
    return VSIX


def test_vsix_holds_the_compiled_extension_and_its_runtime_dependencies(vsix):
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        packaged = json.loads(z.read("extension/package.json"))
    assert packaged["main"] == "./out/src/extension.js"
    assert "extension/out/src/extension.js" in names
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert "extension/readme.md" in {n.lower() for n in names} and "extension/media/ghost-text.png" in names
    assert not any(n.startswith(("extension/src/", "extension/e2e/", "extension/out/test/")) for n in names)
    assert not any(n.startswith("extension/node_modules/typescript/") for n in names)  # dev dependencies stay out


@pytest.mark.model
def test_ghost_text_accepted_with_tab_in_code_server(vsix, stand_in_model, tmp_path):
    need(E2E / "node_modules" / ".bin" / "code-server", "code-server")
    need(E2E / "node_modules" / "playwright-core", "playwright-core")
    need(shutil.which("chromium") or "/usr/bin/chromium", "chromium")
    env = {
        **os.environ,
        "CODEGEMMA_SERVER": sys.executable,
        "CODEGEMMA_SERVER_ARGS": json.dumps(["-m", "codegemma_lsp"]),
        "CODEGEMMA_MODEL": STAND_IN,
        "CODEGEMMA_VSIX": str(vsix),
        "OUT": str(tmp_path),
    }
    done = subprocess.run(["node", str(E2E / "run.mjs")], cwd=E2E, env=env, capture_output=True, text=True,
                          timeout=420)
    lines = done.stdout.strip().splitlines()
    assert lines, f"run.mjs printed nothing (rc {done.returncode}):\n{done.stderr[-4000:]}"
    seen = json.loads(lines[-1])
    assert seen["ok"], (f"{seen.get('error')}\nsteps: {seen['steps']}\nstatus bar: {seen.get('statusAtFailure')}\n"
                          f"notifications: {seen.get('notifications')}\n{done.stderr[-4000:]}")

    # Ghost text from the model continued the typed word; Tab inserted exactly that; Ctrl+S saved it.
    ghost = seen["ghostText"]
    assert ghost.strip() and "\n" not in ghost
    assert seen["savedLine"] == TYPED + ghost
    assert RECURSION.search(seen["savedLine"]), seen["savedLine"]
    saved = seen["savedText"].split("\n")
    assert saved[:4] == ['def fibonacci(n):', '    """Return the n-th Fibonacci number."""', "    if n < 2:",
                         "        return n"]
    assert saved[-2:] == ["print(fibonacci(10))", ""]

    # The status bar item: the model alias, then the latency of the completion just shown.
    assert seen["statusBefore"].startswith(STAND_IN)
    assert re.fullmatch(rf"{re.escape(STAND_IN)} · \d+(\.\d)? (ms|s)", seen["statusAfter"]), seen["statusAfter"]

    # Commands from the palette: pull a model (quick pick from `models list`, then `models pull` with progress;
    # the stand-in is on disk, so it is verified and reported ready) and restart the server.
    assert STAND_IN in seen["pullChoices"] and "2b-q4" in seen["pullChoices"]
    assert seen["pullNotification"] == f"CodeGemma: {STAND_IN} is ready."
    assert seen["statusAfterRestart"] == STAND_IN  # ready again, no completion since the restart

    # A real screenshot of the moment the ghost text was on screen (the README's picture comes from this run).
    assert seen["ghostVisibleAtScreenshot"] is True
    png = (tmp_path / "vscode-ghost-text.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1280, 760)
