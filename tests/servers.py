"""Real inference servers started on loopback, for the remote-backend tests and benchmarks (issue 8):
llama-cpp-python's OpenAI-compatible server and llama-server built from the same llama.cpp
(scripts/build_llama_server.sh), with the caller's threads and context size, so a comparison with in-process
inference differs only in transport.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

BUILD = Path(__file__).resolve().parents[1] / "scripts" / "build_llama_server.sh"
KINDS = ("llama_cpp.server", "llama-server")


def llama_server_binary(build: bool = True) -> Path:
    """The cached llama-server build; built first when missing and `build` (~15 minutes on 2 cores)."""
    done = subprocess.run(["bash", str(BUILD), *([] if build else ["--path"])], check=True, stdout=subprocess.PIPE,
                          text=True)
    return Path(done.stdout.strip().splitlines()[-1])


def _answers(url: str) -> bool:
    """Up and done loading: any HTTP answer but 503 (llama-server's "loading"; a 401 means a key is needed)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code != 503
    except OSError:
        return False


@contextlib.contextmanager
def serve(kind: str, model: Path, threads: int, log: Path, ctx: int = 4096, extra: tuple[str, ...] = (),
          binary: Path | None = None) -> Iterator[str]:
    """Start `kind` on a free loopback port, wait until it has loaded the model, yield its URL; stop it after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if kind == "llama_cpp.server":
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                   "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
                   "--n_ctx", str(ctx)]
        ready = "/v1/models"
    elif kind == "llama-server":
        command = [str(binary or llama_server_binary()), "--model", str(model), "--host", "127.0.0.1", "--port",
                   str(port), "--threads", str(threads), "--threads-batch", str(threads), "--ctx-size", str(ctx),
                   "--parallel", "1", "--no-webui"]
        ready = "/health"
    else:
        raise ValueError(f"unknown server kind {kind!r}; one of {', '.join(KINDS)}")
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([*command, *extra], stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not _answers(url + ready):
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} had not loaded the model after 180 s: see {log}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
