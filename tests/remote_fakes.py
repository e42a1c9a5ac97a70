"""Small stdlib HTTP servers on loopback that speak the documented wire formats of llama-server and Ollama
(neither can be installed here: llama-server is a C++ build, Ollama a Go binary), for protocol tests.

They record every request (path, headers, JSON body) and whether the client hung up mid-stream; replies are
scripted. The real OpenAI-compatible server (llama-cpp-python's) is tested end to end elsewhere.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

# A byte-level vocabulary with CodeGemma's control tokens (as tests/fake_engine.py), so the template is real.
CONTROLS = {"<bos>": 2, "<eos>": 1, "<|fim_prefix|>": 67, "<|fim_middle|>": 68, "<|fim_suffix|>": 69,
            "<|file_separator|>": 70, "<end_of_turn>": 107}
SPELLING = {i: t for t, i in CONTROLS.items()}


def byte_ids(text: str, special: bool) -> list[int]:
    """Tokenize as the fake vocabulary does: one id per byte (200 + byte), control spellings parsed if asked."""
    out: list[int] = []
    i = 0
    while i < len(text):
        hit = next((t for t in CONTROLS if special and text.startswith(t, i)), None)
        if hit:
            out.append(CONTROLS[hit])
            i += len(hit)
        else:
            out.extend(200 + b for b in text[i].encode())
            i += 1
    return out


def byte_text(ids: list[int]) -> str:
    return bytes(i - 200 for i in ids if i >= 200).decode("utf-8", errors="replace")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Script:
    """What the fake does next: the tokens to stream, how fast, and an optional failure."""

    reply: list[int] = field(default_factory=lambda: byte_ids("value + 1", False))
    finish: str = "eos"  # eos | limit
    delay_s: float = 0.0
    status: int = 200  # answer every request with this status instead (401, 500, ...)
    drop_first: int = 0  # close the connection without answering this many times first
    hang_up: bool = False  # close each connection after answering, without saying so (an idle keep-alive timeout)


class FakeServer:
    """Base: a ThreadingHTTPServer on a free loopback port, routing to `get_<name>` / `post_<name>` methods."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script = Script()
        self.disconnected = threading.Event()
        self.sent_events = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                if fake.script.drop_first > 0:
                    fake.script.drop_first -= 1
                    self.close_connection = True
                    return
                if fake.script.status != 200:
                    self._json({"error": {"code": fake.script.status, "message": "scripted failure"}},
                               fake.script.status)
                    return
                handler = getattr(fake, f"{method}_{self.path.strip('/').replace('/', '_')}", None)
                if handler is None:
                    self._json({"error": "not found"}, 404)
                else:
                    handler(self, body)
                self.close_connection = self.close_connection or fake.script.hang_up

            def do_GET(self) -> None:
                self._route("get")

            def do_POST(self) -> None:
                self._route("post")

            def _json(self, data: Any, status: int = 200) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.handler_class = Handler
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stream(self, handler: BaseHTTPRequestHandler, events: list[Any], frame: Callable[[Any], bytes],
               content_type: str) -> None:
        """Send `events` chunked, one per script delay; a client that hangs up is recorded, not an error."""
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            for event in events:
                time.sleep(self.script.delay_s)
                data = frame(event)
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                handler.wfile.flush()
                self.sent_events += 1
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.disconnected.set()
        handler.close_connection = True

    def bodies(self, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sse(event: Any) -> bytes:
    """One SSE event; a string goes as it is (`[DONE]`)."""
    return b"data: " + (event if isinstance(event, str) else json.dumps(event)).encode() + b"\n\n"


class FakeLlamaServer(FakeServer):
    """llama.cpp's llama-server: /props, /v1/models, /tokenize, /detokenize, /completion and /infill (SSE)."""

    n_ctx = 4096

    def get_props(self, h: Any, body: Any) -> None:
        h._json({"default_generation_settings": {"n_ctx": self.n_ctx, "params": {}}, "total_slots": 1,
                 "model_path": "/models/fake.gguf", "bos_token": "<bos>", "eos_token": "<eos>",
                 "build_info": "b0000-fake"})

    def get_v1_models(self, h: Any, body: Any) -> None:
        h._json({"object": "list", "data": [{"id": "fake.gguf", "object": "model",
                                              "meta": {"n_params": 1234, "size": 5678, "n_vocab": 456}}]})

    def post_tokenize(self, h: Any, body: Any) -> None:
        h._json({"tokens": byte_ids(body["content"], body.get("parse_special", True))})

    def post_detokenize(self, h: Any, body: Any) -> None:
        raw = b"".join(bytes([i - 200]) if i >= 200 else SPELLING.get(i, "").encode() for i in body["tokens"])
        h._json({"content": raw.decode("utf-8", errors="replace")})

    def _generate(self, h: Any, body: Any) -> None:
        reply = self.script.reply[: body["n_predict"]]
        timings = lambda n: {"cache_n": 3, "prompt_n": 7, "prompt_ms": 1.5, "predicted_n": n, "predicted_ms": 2.5 * n}
        events: list[Any] = [{"content": byte_text([t]), "tokens": [t], "stop": False, "timings": timings(k + 1)}
                             for k, t in enumerate(reply)]
        finish = "limit" if len(reply) == body["n_predict"] else self.script.finish
        events.append({"content": "", "tokens": [], "stop": True, "stop_type": finish, "tokens_cached": 10,
                       "timings": timings(len(reply))})
        self.stream(h, events, sse, "text/event-stream")

    post_completion = _generate
    post_infill = _generate


class FakeOllama(FakeServer):
    """Ollama: /api/tags, /api/show (its modelfile names the GGUF blob), /api/generate streaming NDJSON."""

    def __init__(self, blob: str) -> None:
        super().__init__()
        self.blob = blob
        self.reply_text = ["fib", "onacci", "(n - 1)", "\n"]

    def get_api_tags(self, h: Any, body: Any) -> None:
        h._json({"models": [{"name": "fake-coder:latest", "model": "fake-coder:latest", "size": 1,
                             "details": {"family": "gemma", "quantization_level": "Q8_0"}}]})

    def post_api_show(self, h: Any, body: Any) -> None:
        h._json({"modelfile": f"# Modelfile generated by \"ollama show\"\nFROM {self.blob}\nTEMPLATE {{{{ .Prompt }}}}\n",
                 "model_info": {"general.architecture": "gemma", "general.parameter_count": 42}})

    def post_api_generate(self, h: Any, body: Any) -> None:
        events: list[Any] = [{"model": body["model"], "response": piece, "done": False} for piece in self.reply_text]
        events.append({"model": body["model"], "response": "", "done": True, "done_reason": "stop",
                       "prompt_eval_count": 5, "prompt_eval_duration": 2_000_000, "eval_count": len(self.reply_text),
                       "eval_duration": 8_000_000})
        self.stream(h, events, lambda e: json.dumps(e).encode() + b"\n", "application/x-ndjson")
