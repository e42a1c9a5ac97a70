"""Inference servers started on loopback for the remote-backend benchmarks (issue 8): llama-cpp-python's
OpenAI-compatible server and llama-server built from the same llama.cpp (scripts/build_llama_server.sh), each with
the benchmark's threads and context size, so a comparison with in-process inference differs only in transport.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
KINDS = ("llama_cpp.server", "llama-server")


def llama_server_binary() -> str:
    """The cached llama-server build (built on first use: ~15 minutes on 2 cores)."""
    done = subprocess.run(["bash", str(HERE.parent / "scripts" / "build_llama_server.sh")], check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(kind: str, model: Path, threads: int, log: Path, ctx: int = 4096) -> Iterator[str]:
    """Start `kind` on a free loopback port, wait until it answers its readiness endpoint, yield its URL."""
    port = _free_port()
    if kind == "llama_cpp.server":
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                   "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
                   "--n_ctx", str(ctx)]
        ready = "/v1/models"
    elif kind == "llama-server":
        command = [llama_server_binary(), "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
                   "--threads", str(threads), "--threads-batch", str(threads), "--ctx-size", str(ctx),
                   "--parallel", "1", "--no-webui"]
        ready = "/health"
    else:
        raise SystemExit(f"unknown server kind {kind!r}; one of {', '.join(KINDS)}")
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{kind} exited with {proc.returncode}: see {log}")
            try:
                with urllib.request.urlopen(url + ready, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} was not ready within 180 s: see {log}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
