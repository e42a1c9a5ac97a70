"""Network and lifecycle: `--tcp` listens on 127.0.0.1 unless `--host` says otherwise, stdio mode opens no network
socket at all, and the process exits promptly after shutdown/exit, after exit alone (code 1, as LSP asks), and
when the client dies without either (stdin closed) while a completion is being generated or while a model
download hangs (a worker that cannot be interrupted must not keep the process alive).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import server_command
from tests.hardening_engines import Wire, frame

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def inet_sockets(pid: int) -> list[tuple[str, str, str]]:
    """(protocol, local address, state) of every TCP/UDP socket the process holds, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for row in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[9] in inodes:
                found.append((proto, fields[1], fields[3]))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            assert time.monotonic() < deadline, "the server never listened"
            time.sleep(0.1)


def rpc(sock: socket.socket, message: dict) -> dict | None:
    sock.sendall(frame(json.dumps(message).encode()))
    if "id" not in message:
        return None
    reader = READERS.setdefault(sock.fileno(), sock.makefile("rb"))
    while True:
        length = 0
        while (header := reader.readline()).strip():
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        answer = json.loads(reader.read(length))
        if answer.get("id") == message["id"]:
            return answer


READERS: dict[int, object] = {}


@pytest.mark.parametrize("host, expected", [(None, "0100007F"), ("0.0.0.0", "00000000")])
def test_tcp_listens_on_loopback_unless_told_otherwise(tiny_model, host, expected):
    port = free_port()
    args = ["--tcp", str(port), "--model", str(tiny_model), "--no-download"] + (["--host", host] if host else [])
    proc = subprocess.Popen(server_command(*args), stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = connect(port, time.monotonic() + 30)
        READERS.pop(sock.fileno(), None)
        listening = [s for s in inet_sockets(proc.pid) if s[2] == "0A"]  # 0A: LISTEN
        assert listening == [("tcp", f"{expected}:{port:04X}", "0A")], listening
        with sock:
            assert "result" in rpc(sock, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "capabilities": {}}})
            assert rpc(sock, {"jsonrpc": "2.0", "id": 2, "method": "codegemma/status"})["result"]["version"]
            assert rpc(sock, {"jsonrpc": "2.0", "id": 3, "method": "shutdown"})["result"] is None
            rpc(sock, {"jsonrpc": "2.0", "method": "exit"})
            assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_stdio_mode_opens_no_network_socket(tiny_model, tmp_path):
    wire = Wire(server_command("--model", str(tiny_model))[1:], tmp_path / "server.log")  # downloads allowed
    try:
        wire.request("initialize", {"capabilities": {}, "rootUri": tmp_path.as_uri(),
                                    "initializationOptions": {"maxTokens": 4}})
        wire.notify("initialized", {})
        uri = (tmp_path / "a.py").as_uri()
        wire.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                              "text": "import os\nprint(os.getcwd())\n"}})
        deadline = time.monotonic() + 60
        while wire.request("codegemma/status", None)["result"]["state"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "result" in wire.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "position": {
            "line": 1, "character": 6}, "context": {"triggerKind": 1}}, timeout=60)
        assert inet_sockets(wire.proc.pid) == []
    finally:
        wire.close()


def started(args: list[str], tmp_path: Path, **init) -> Wire:
    wire = Wire(args, tmp_path / "server.log")
    wire.request("initialize", {"capabilities": {}, "initializationOptions": init})
    wire.notify("initialized", {})
    return wire


def exits_within(wire: Wire, seconds: float) -> int:
    try:
        return wire.proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the server was still running {seconds} s later") from None


def test_shutdown_then_exit_and_exit_alone(tmp_path):
    wire = started(["-m", "tests.hardening_engines"], tmp_path)
    assert wire.request("shutdown", None)["result"] is None
    assert wire.request("codegemma/status", None)["error"]["code"] == -32600  # after shutdown: an error, not silence
    wire.notify("exit", None)
    assert exits_within(wire, 5) == 0
    wire.close()
    wire = started(["-m", "tests.hardening_engines"], tmp_path)
    wire.notify("exit", None)
    assert exits_within(wire, 5) == 1  # exit without shutdown
    wire.close()


def test_client_dying_mid_generation_ends_the_process(tmp_path):
    wire = started(["-m", "tests.hardening_engines", "0", "0.5"], tmp_path)  # 0.5 s per character: ~10 s
    uri = "file:///proj/a.py"
    wire.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                          "text": "x = 1\n"}})
    wire.send({"jsonrpc": "2.0", "id": 99, "method": "textDocument/inlineCompletion", "params": {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 0}, "context": {"triggerKind": 1}}})
    time.sleep(1.0)  # generation is under way
    started_at = time.monotonic()
    wire.proc.stdin.close()
    assert exits_within(wire, 5) == 0
    assert time.monotonic() - started_at < 3
    wire.close()


class Stall(BaseHTTPRequestHandler):
    """Sends the headers and a few bytes of a model file, then nothing: a download that hangs."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"GGUF")
        self.wfile.flush()
        self.release.wait(60)

    def log_message(self, *args: object) -> None:
        pass


def test_client_dying_during_a_hung_download_ends_the_process(tmp_path):
    http = ThreadingHTTPServer(("127.0.0.1", 0), Stall)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    registry = tmp_path / "registry.toml"
    registry.write_text(f'''default = "stall"
[[model]]
alias = "stall"
family = "test"
params = "1m"
quantization = "F32"
filename = "stall.gguf"
size = 1000000
license = "test"
description = "a download that never finishes"
[[model.source]]
kind = "url"
url = "http://127.0.0.1:{http.server_address[1]}/stall.gguf"
''')
    code = ("import runpy, sys; from pathlib import Path; import codegemma_lsp.registry as registry; "
            f"registry.registry_path = lambda: Path({str(registry)!r}); "
            "sys.argv = ['codegemma-lsp', '--model', 'stall']; "
            "runpy.run_module('codegemma_lsp', run_name='__main__', alter_sys=True)")
    env = dict(os.environ, CODEGEMMA_LSP_CACHE=str(tmp_path / "cache"))
    wire = Wire(["-c", code], tmp_path / "server.log", env=env)
    try:
        wire.request("initialize", {"capabilities": {}})
        wire.notify("initialized", {})
        deadline = time.monotonic() + 20
        while not (tmp_path / "cache" / "stall.gguf.part").exists():  # the download has started, and hangs
            assert time.monotonic() < deadline, wire.request("codegemma/status", None)
            time.sleep(0.05)
        assert wire.request("codegemma/status", None)["result"]["state"] == "loading"
        started_at = time.monotonic()
        wire.proc.stdin.close()
        exits_within(wire, 8)
        assert time.monotonic() - started_at < 6
        assert not (tmp_path / "cache" / "stall.gguf").exists()  # nothing half-downloaded at the final name
    finally:
        Stall.release.set()
        wire.close()
        http.shutdown()
