"""HTTP to a remote inference server: JSON calls, streamed responses, auth, TLS, timeouts and retries.

Standard library only (http.client), so the remote path adds no dependency. Small JSON calls (tokenize, model
info) share one keep-alive connection; each generation gets its own connection, because closing it is how a
cancelled request tells the server to stop generating (llama-server, llama-cpp-python's server and Ollama all
abort a generation whose client went away).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from .errors import BackendAuthError, BackendError, BackendUnavailable, EndpointMissing

log = logging.getLogger(__name__)

# Errors after which the same request may succeed: the server is starting, restarting or a keep-alive
# connection went stale. TLS verification failures are OSErrors too but never retried (see _is_transient).
_TRANSIENT = (ConnectionError, socket.timeout, socket.gaierror, http.client.RemoteDisconnected,
              http.client.BadStatusLine)
_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)  # a closed keep-alive socket
_RETRY_STATUS = frozenset({502, 503, 504})  # gateway up, model server loading or restarting


@dataclass(frozen=True)
class Timeouts:
    """Connect: how long an unreachable server may take to refuse. Read: the longest silence in a response
    (prompt evaluation on a busy server comes before the first streamed token)."""

    connect_s: float = 5.0
    read_s: float = 120.0


@dataclass(frozen=True)
class Retry:
    """An exponential backoff schedule: attempts and the waits between them. Backends retry connection errors
    and 502/503/504 (a 4xx is an answer, never retried); model downloads retry a dropped transfer, resuming it."""

    attempts: int = 4
    first_delay_s: float = 0.25
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay *= self.factor


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT) and not isinstance(exc, ssl.SSLError)


class Stream:
    """One streamed response: iterate its events (SSE `data:` payloads or NDJSON lines, parsed as JSON).

    `abort()` may be called from another thread: it shuts the socket down, so a read blocked while the server
    evaluates the prompt returns at once, and the server sees its client gone.
    """

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, sse: bool) -> None:
        self._conn, self._response, self._sse = conn, response, sse
        self.aborted = False

    def __iter__(self) -> Iterator[Any]:
        data: list[str] = []
        try:
            for raw in self._response:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not self._sse:
                    if line.strip():
                        yield json.loads(line)
                    continue
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line.startswith("error:"):  # llama-server reports a failure mid-stream this way
                    raise BackendError(f"the backend failed while generating: {line[6:].strip()}")
                elif not line and data:
                    payload = "\n".join(data)
                    data = []
                    if payload == "[DONE]":
                        return
                    yield json.loads(payload)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if self.aborted:
                return
            raise BackendError(f"the backend's stream broke off: {exc!r}") from exc

    def abort(self) -> None:
        self.aborted = True
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._conn.close()


class Transport:
    """A base URL plus everything needed to talk to it safely."""

    def __init__(
        self, url: str, *, api_key_env: str = "CODEGEMMA_API_KEY", timeouts: Timeouts = Timeouts(),
        retry: Retry = Retry(), sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"backend URL {url!r} is not an http(s) URL", "use e.g. http://127.0.0.1:8080")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")  # a server behind a path prefix (reverse proxy)
        self._ssl = ssl.create_default_context() if self._https else None  # certificate and host name verified
        self.api_key_env = api_key_env
        self.timeouts, self.retry, self._sleep = timeouts, retry, sleep
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _headers(self, body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream, application/x-ndjson"}
        if body:
            headers["Content-Type"] = "application/json"
        if key := os.environ.get(self.api_key_env, "").strip():
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _connect(self) -> http.client.HTTPConnection:
        timeout = self.timeouts.connect_s
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(self.timeouts.read_s)
        return conn

    def _send(self, method: str, path: str, body: Any, conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, self._prefix + path, body=payload, headers=self._headers(payload is not None))
        return conn.getresponse()

    def _with_retries(self, attempt: Callable[[], Any], what: str) -> Any:
        delays = self.retry.delays()
        while True:
            try:
                return attempt()
            except BackendError:
                raise
            except ssl.SSLError as exc:
                raise BackendError(
                    f"TLS to {self.url} failed: {exc}",
                    "the certificate must be valid for the host name; install the CA into the system store "
                    "(or SSL_CERT_FILE) rather than turning verification off",
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                if not _is_transient(exc):
                    raise BackendError(f"{what} to {self.url} failed: {exc!r}") from exc
                delay = next(delays, None)
                if delay is None:
                    raise BackendUnavailable(
                        f"backend {self.url} is unreachable ({exc.__class__.__name__}: {exc})",
                        "start the inference server or fix --backend / the `backend` setting; completions "
                        "already shown for this text are still served",
                    ) from exc
                log.warning("%s to %s failed (%r); retrying in %.2fs", what, self.url, exc, delay)
                self._sleep(delay)

    def _check(self, response: http.client.HTTPResponse, path: str) -> None:
        """Raise for an error status, reading the server's message; 502/503/504 become retryable."""
        if response.status < 400:
            return
        text = response.read().decode("utf-8", errors="replace")
        try:
            detail = json.loads(text)
            detail = detail.get("error", detail.get("detail", detail)) if isinstance(detail, dict) else detail
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
        except ValueError:
            detail = text.strip()[:300]
        message = f"backend {self.url}{path} answered {response.status}: {detail}"
        if response.status in (401, 403):
            present = bool(os.environ.get(self.api_key_env, "").strip())
            raise BackendAuthError(message, (
                f"the key in ${self.api_key_env} was refused; set it to the server's API key"
                if present else
                f"the server wants an API key: export {self.api_key_env}=<key> before starting the editor "
                "(or name another variable with backendApiKeyEnv)"
            ))
        if response.status in _RETRY_STATUS:
            raise ConnectionError(message)  # transient: retried with backoff
        if response.status in (404, 405):
            raise EndpointMissing(message, "set backendKind to the kind of server at this URL")
        raise BackendError(message, "check backendKind/backendModel, or the server's log")

    def _exchange(self, method: str, path: str, body: Any) -> bytes:
        """One request on the shared connection (opened if needed); the connection is dropped on any error."""
        if self._conn is None:
            self._conn = self._connect()
        try:
            response = self._send(method, path, body, self._conn)
            self._check(response, path)
            return response.read()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON call on the shared keep-alive connection; the parsed JSON answer."""

        def attempt() -> bytes:
            with self._lock:
                reused = self._conn is not None
                try:
                    return self._exchange(method, path, body)
                except _STALE:
                    if not reused:
                        raise
                    # The server closed the idle keep-alive connection (uvicorn does after 5 s): not an outage.
                    return self._exchange(method, path, body)

        data = self._with_retries(attempt, f"{method} {path}")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BackendError(f"backend {self.url}{path} did not answer JSON: {data[:200]!r}") from exc

    def probe(self, path: str) -> Any | None:
        """GET `path`; None when the server does not have it (404/405), for detecting the kind of server."""
        try:
            return self.request("GET", path)
        except EndpointMissing:
            return None

    def stream(self, path: str, body: Any, *, sse: bool) -> Stream:
        """POST and return the streamed response on a connection of its own (retried until it starts)."""

        def attempt() -> Stream:
            conn = self._connect()
            try:
                response = self._send("POST", path, body, conn)
                self._check(response, path)
            except BaseException:
                conn.close()
                raise
            return Stream(conn, response, sse)

        return self._with_retries(attempt, f"POST {path}")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
