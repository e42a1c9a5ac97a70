"""Confinement, through the cross-file context's public API (codegemma_lsp.context: WorkspaceIndex and
ImportGraphContext, what the server calls): however imports are written, context gathering opens no file and lists
no directory outside the workspace folders, never opens a FIFO or a device, and no byte of an outside file
reaches the prompt. Every open and directory listing during gathering is recorded and checked.

The workspace imports, in Python, C and JavaScript: a symlink to an outside file, a symlinked directory, `../..`
climbing out, absolute paths, a FIFO (opening it would block forever), /dev/zero behind a symlink, and one
legitimate module (so the test fails if gathering silently stopped working).
"""

from __future__ import annotations

import builtins
import io
import os
import threading
from pathlib import Path

import pytest

import codegemma_lsp
from codegemma_lsp.completion import CompletionRequest
from codegemma_lsp.context import ImportGraphContext, WorkspaceIndex

CANARY = "SECRET_CANARY_d41d8cd9"
PACKAGE = os.path.realpath(Path(codegemma_lsp.__file__).parent) + os.sep


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "pkg").mkdir(parents=True)
    (root / "c").mkdir()
    (root / "web" / "src").mkdir(parents=True)
    outside.mkdir()
    (outside / "mod").mkdir()
    for name in ("secret.py", "mod/__init__.py", "mod/deep.py"):
        (outside / name).write_text(f"{CANARY} = 'leaked'\ndef KEY():\n    return {CANARY}\n")
    (outside / "secret.h").write_text(f"int {CANARY}(void);\n")
    (outside / "secret.js").write_text(f"export function k() {{ return '{CANARY}'; }}\n")
    (root / "good.py").write_text("def helper(x):\n    \"\"\"A legitimate dependency.\"\"\"\n    return x + 1\n")
    (root / "secret_link.py").symlink_to(outside / "secret.py")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "linked.py").symlink_to(outside / "secret.py")
    (root / "outdir").symlink_to(outside / "mod", target_is_directory=True)
    (root / "zero.py").symlink_to("/dev/zero")
    os.mkfifo(root / "fifo_mod.py")
    (root / "main.py").write_text(
        "from good import helper\n"
        "from secret_link import KEY\n"
        "from pkg.linked import KEY as K2\n"
        "from outdir.deep import KEY as K3\n"
        "from fifo_mod import F\n"
        "from zero import Z\n"
        "from ..outside.secret import KEY as K4\n"
        "from ...outside import secret\n"
        "import outside.secret\n\n"
        "def use():\n"
        "    return helper(KEY() + K2() + K3() + K4() + F + Z + secret.KEY())\n\n"
        "use(\n")
    (root / "c" / "main.c").write_text(
        f'#include "{outside / "secret.h"}"\n#include "../../outside/secret.h"\n#include "../outside/secret.h"\n'
        f"int main(void) {{ return {CANARY}(); }}\n")
    (root / "web" / "src" / "main.js").write_text(
        f"import {{ k }} from '../../../outside/secret.js';\nimport z from '{outside / 'secret.js'}';\n"
        "import f from '../../fifo_mod.py';\nk(z(f));\n")
    return root, outside


def gather_recording(root: Path, relative: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list[str]]:
    """Gather context for the file, in a thread (a FIFO open would block it), recording every open and listing."""
    touched: list[str] = []
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open
    real_scandir, real_listdir = os.scandir, os.listdir

    def spy(real):
        def wrapper(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)):
                touched.append(os.fsdecode(path))
            return real(path, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(os, "open", spy(real_os_open))
    monkeypatch.setattr(os, "scandir", spy(real_scandir))
    monkeypatch.setattr(os, "listdir", spy(real_listdir))

    index = WorkspaceIndex([root])
    provider = ImportGraphContext(index)
    text = (root / relative).read_text()
    request = CompletionRequest(uri=(root / relative).as_uri(), path=relative, text=text, offset=len(text) - 1)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(provider.gather(request, 4096, lambda s: [ord(c) for c in s])),
                              daemon=True)
    worker.start()
    worker.join(20)
    monkeypatch.undo()
    assert not worker.is_alive(), "context gathering blocked (a FIFO or a device was opened?)"
    return result[0], touched


@pytest.mark.parametrize("relative", ["main.py", "c/main.c", "web/src/main.js"])
def test_context_never_reads_outside_the_workspace(workspace, monkeypatch, relative):
    root, outside = workspace
    files, touched = gather_recording(root, relative, monkeypatch)
    real_root = os.path.realpath(root)
    for path in touched:
        real = os.path.realpath(path)
        if real.startswith(PACKAGE):
            continue  # the package's own tree-sitter queries, loaded on first use
        assert real == real_root or real.startswith(real_root + os.sep), f"touched {path} -> {real}"
        assert not real.startswith("/dev"), path
        assert Path(path).name != "fifo_mod.py", f"opened the FIFO {path}"
    text = "".join(chr(i) for f in files for i in f.ids)
    assert CANARY not in text and "leaked" not in text
    assert all(".." not in f.path and not f.path.startswith("/") for f in files)
    if relative == "main.py":
        assert [f.path for f in files] == ["good.py"] and "legitimate dependency" in text
        assert any(Path(p).name == "good.py" for p in touched)  # the recording does see reads
