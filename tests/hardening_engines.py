"""Scripted engines for the hardening tests' protocol logic (never as proof of inference: that takes a real GGUF).

`EchoEngine` tokenizes bytes (UTF-8, lone surrogates passed through) and "generates" a fingerprint of the
prefix and suffix it finds in the prompt, so a test can check exactly which text the server cut at the cursor.
`Wire` drives a server process over raw pipes (bytes in, parsed messages out), for tests that must write
malformed bytes or thousands of messages faster than an LSP client library would. Run as a module to serve LSP
with EchoEngine: `python -m tests.hardening_engines [eval seconds] [seconds per token] [edges]`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from codegemma_lsp.config import Config
from codegemma_lsp.engine import Generation, GenerationRequest, GenerationStats, ModelInfo

CONTROLS = {"<|fim_prefix|>": 67, "<|fim_middle|>": 68, "<|fim_suffix|>": 69, "<|file_separator|>": 70}
FIRST_BYTE = 200
MARK = "§"  # fingerprints start with it; the tests never type it, so typed-ahead answers cannot hit


def encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")


def fingerprint(prefix: str, suffix: str) -> str:
    """What EchoEngine answers for a prompt holding this prefix and suffix."""
    digest = hashlib.blake2b(encode(prefix) + b"\0" + encode(suffix), digest_size=8).hexdigest()
    return f"{MARK}{len(prefix)}:{len(suffix)}:{digest}"


def edges(prefix: str, suffix: str, width: int = 24) -> str:
    """What EchoEngine(edges=True) answers: the text just around the cursor, whatever the window sizes."""
    return f"{MARK}{prefix[-width:]}|{suffix[:width]}"


def _text(ids: list[int]) -> str:
    return bytes(i - FIRST_BYTE for i in ids).decode("utf-8", errors="surrogatepass")


def split_prompt(prompt: tuple[int, ...]) -> tuple[str, str]:
    """(prefix, suffix) of the current file in a codegemma-template prompt, PSM or SPM layout."""
    p = len(prompt) - 1 - prompt[::-1].index(CONTROLS["<|fim_prefix|>"])
    s = prompt.index(CONTROLS["<|fim_suffix|>"], p)
    m = prompt.index(CONTROLS["<|fim_middle|>"], s)
    if s == p + 1:  # SPM: <pre><suf>suffix<mid>prefix
        return _text(list(prompt[m + 1 :])), _text(list(prompt[s + 1 : m]))
    return _text(list(prompt[p + 1 : s])), _text(list(prompt[s + 1 : m]))


class EchoEngine:
    """Answers `fingerprint(prefix, suffix)`. `eval_s` is spent before the first cancellation check (like a
    prompt slice in llama.cpp), `step_s` per generated character, polling cancellation between them."""

    bos_id = 2
    end_ids = frozenset({1})
    heals = False

    def __init__(self, path: Path, config: Config, eval_s: float = 0.0, step_s: float = 0.0,
                 answer_edges: bool = False) -> None:
        self.eval_s, self.step_s, self.answer = eval_s, step_s, edges if answer_edges else fingerprint
        self.info = ModelInfo(path=str(path), architecture="echo", name="echo", file_type="", size_bytes=0,
                              n_params=0, n_ctx=config.ctx_size, n_gpu_layers=0, gpu_offload_supported=False,
                              vocab_size=FIRST_BYTE + 256)

    def tokenize(self, text: str) -> list[int]:
        return [FIRST_BYTE + b for b in encode(text)]

    def special_token(self, text: str) -> int | None:
        return CONTROLS.get(text)

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        time.sleep(self.eval_s)
        answer, out, reason = self.answer(*split_prompt(request.prompt)), "", "eos"
        for ch in answer:
            if cancelled():
                reason = "cancelled"
                break
            if self.step_s:
                time.sleep(self.step_s)
            out += ch
        stats = GenerationStats(len(request.prompt), 0, len(request.prompt), len(out), 0.0, 0.0, reason)
        return Generation(text=out, ids=tuple(encode(out)), stats=stats)


class Wire:
    """A server process on pipes: raw bytes in, parsed JSON-RPC messages out (read by a thread)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env)
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.responses: dict[Any, dict[str, Any]] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = out.readline()
            if not header:
                return
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
                while out.readline().strip():
                    pass
                self.inbox.put(json.loads(out.read(length)))

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.write(frame(json.dumps(message).encode()))

    def drain(self) -> None:
        while True:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return
            if "method" not in message:  # responses; notifications from the server are not counted
                key = json.dumps(message.get("id"))
                assert key not in self.responses or message.get("id") is None, f"two answers for {key}"
                self.responses[key] = message

    def wait_for(self, ids: list[Any], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        missing = [json.dumps(i) for i in ids]
        while True:
            self.drain()
            missing = [k for k in missing if k not in self.responses]
            if not missing:
                return
            assert self.proc.poll() is None, f"server exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, f"no answer for ids {missing[:5]} (of {len(missing)})"
            time.sleep(0.002)

    def request(self, method: str, params: Any, timeout: float = 20.0) -> dict[str, Any]:
        msg_id = next(IDS)
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        self.wait_for([msg_id], timeout)
        return self.responses[json.dumps(msg_id)]

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def memory_kb(self, field: str = "VmRSS") -> int:
        """VmRSS (now) or VmHWM (peak) of the server process, from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


IDS = itertools.count(1)


def main() -> None:
    from codegemma_lsp.server import build_server

    eval_s = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    step_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    answer_edges = len(sys.argv) > 3 and sys.argv[3] == "edges"
    server = build_server(Config(model=__file__),
                          lambda path, config: EchoEngine(path, config, eval_s, step_s, answer_edges))
    server.start_io()
    if not server.release_workers():  # as codegemma_lsp.cli does after serving
        os._exit(server.exit_code)
    sys.exit(server.exit_code)


if __name__ == "__main__":
    main()
