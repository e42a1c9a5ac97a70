"""HTTP to a backend: retries with exponential backoff on connection errors (never on a 4xx), the API key
header from its environment variable, a 401 that says which variable to set, TLS verification on, and
SSE/NDJSON framing — against loopback stdlib servers (tests/remote_fakes.py)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer

import pytest

from codegemma_lsp.errors import BackendAuthError, BackendError, BackendUnavailable
from codegemma_lsp.transport import Retry, Timeouts, Transport
from tests.remote_fakes import FakeLlamaServer, Script


@pytest.fixture
def fake():
    server = FakeLlamaServer()
    yield server
    server.close()


def transport(url: str, slept: list[float], **kw) -> Transport:
    return Transport(url, sleep=slept.append, timeouts=Timeouts(connect_s=2.0, read_s=5.0), **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_drops_are_retried_with_exponential_backoff_then_succeed(fake):
    fake.script = Script(drop_first=2)
    slept: list[float] = []
    props = transport(fake.url, slept).request("GET", "/props")
    assert props["total_slots"] == 1
    assert slept == [0.25, 0.5] and len(fake.requests) == 3


def test_a_server_that_comes_up_late_is_reached(fake):
    """Connection refused at first (the port is not open yet), then the server starts: the retry finds it."""
    port = closed_port()
    slept: list[float] = []

    def start_after_first_failure(delay: float) -> None:
        slept.append(delay)
        if len(slept) == 1:
            server = ThreadingHTTPServer(("127.0.0.1", port), fake.handler_class)
            threading.Thread(target=server.serve_forever, daemon=True).start()

    t = Transport(f"http://127.0.0.1:{port}", sleep=start_after_first_failure)
    assert t.request("GET", "/props")["model_path"] == "/models/fake.gguf"
    assert slept == [0.25]


def test_a_dead_backend_is_a_clear_error_after_the_retries():
    slept: list[float] = []
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(BackendUnavailable) as info:
        transport(url, slept, retry=Retry(attempts=4, first_delay_s=0.1)).request("GET", "/props")
    assert slept == [0.1, 0.2, 0.4]
    assert f"backend {url} is unreachable" in str(info.value) and "ConnectionRefusedError" in str(info.value)
    assert "start the inference server" in info.value.fix


def test_4xx_is_an_answer_never_retried_but_503_is(fake):
    slept: list[float] = []
    fake.script = Script(status=400)
    with pytest.raises(BackendError, match="answered 400: scripted failure"):
        transport(fake.url, slept).request("POST", "/completion", {})
    assert slept == [] and len(fake.requests) == 1
    fake.script = Script(status=503)
    with pytest.raises(BackendUnavailable, match="answered 503"):
        transport(fake.url, slept, retry=Retry(attempts=3)).request("GET", "/props")
    assert slept == [0.25, 0.5] and len(fake.requests) == 1 + 3


def test_the_api_key_comes_from_the_named_environment_variable(fake, monkeypatch):
    monkeypatch.setenv("TEAM_LLM_KEY", "s3cret")
    monkeypatch.delenv("CODEGEMMA_API_KEY", raising=False)
    transport(fake.url, [], api_key_env="TEAM_LLM_KEY").request("GET", "/props")
    transport(fake.url, []).request("GET", "/props")
    with_key, without = fake.requests
    assert with_key.headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in without.headers


def test_401_says_which_variable_to_set(fake, monkeypatch):
    monkeypatch.delenv("CODEGEMMA_API_KEY", raising=False)
    fake.script = Script(status=401)
    slept: list[float] = []
    with pytest.raises(BackendAuthError) as missing:
        transport(fake.url, slept).request("GET", "/props")
    assert "export CODEGEMMA_API_KEY=<key>" in missing.value.fix and slept == []
    monkeypatch.setenv("CODEGEMMA_API_KEY", "wrong")
    with pytest.raises(BackendAuthError) as wrong:
        transport(fake.url, slept).request("GET", "/props")
    assert "the key in $CODEGEMMA_API_KEY was refused" in wrong.value.fix


def test_tls_certificates_are_verified(tmp_path, fake):
    """A self-signed certificate is refused (not retried), with a fix that does not say 'turn verification off'."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler_class)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slept: list[float] = []
    try:
        with pytest.raises(BackendError) as info:
            transport(f"https://127.0.0.1:{server.server_address[1]}", slept).request("GET", "/props")
        assert "TLS to https://127.0.0.1" in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        assert slept == [] and not fake.requests
    finally:
        server.shutdown()
        server.server_close()


def test_sse_stream_framing_and_a_mid_stream_error(fake):
    t = Transport(fake.url)
    events = list(t.stream("/completion", {"prompt": [1], "n_predict": 3}, sse=True))
    assert [e["content"] for e in events][:3] == ["v", "a", "l"] and events[-1]["stop"] is True

    def failing(handler, body):
        fake.stream(handler, ["x"], lambda e: b'data: {"content": "a"}\n\nerror: {"message": "slot died"}\n\n',
                    "text/event-stream")

    fake.post_completion = failing
    with pytest.raises(BackendError, match="slot died"):
        list(t.stream("/completion", {}, sse=True))


def test_a_keep_alive_connection_the_server_closed_is_reopened_without_backoff(fake):
    fake.script = Script(hang_up=True)
    slept: list[float] = []
    t = transport(fake.url, slept)
    for _ in range(3):
        assert t.request("GET", "/props")["total_slots"] == 1
    assert slept == [] and len(fake.requests) == 3
