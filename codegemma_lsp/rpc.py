"""The JSON-RPC edge, hardened: whatever bytes arrive, the server keeps reading and every request is answered.

pygls 2.1 as shipped leaves gaps a hostile or buggy client falls into:
- framing: a header it does not recognise (lower case, a bare \\n, garbage before it) desynchronises the
  stream for good, and an absurd Content-Length makes it try to allocate that much and die;
- a request whose params do not match the LSP schema is logged and never answered, so the client waits forever;
- requests before `initialize` crash on the missing workspace, a second `initialize` silently replaces every
  open document, and requests after `shutdown` are dropped instead of answered;
- errors in notifications pop up a window message per message;
- every step of a generator handler (all of pygls' built-in ones: didOpen, didChange, initialize ...) stores
  its future under a fresh uuid in `_request_futures` and never removes it: one leaked future per message;
- `shutdown` iterates `_request_futures` while handlers on worker threads change it, and may fail.
Here the reader resynchronises on the next Content-Length header, bounds the body size, and the protocol answers
every request it can identify (an id and a method) with a result or a JSON-RPC error. Part of the protocol edge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
from typing import Any, Generator

import attrs
from cattrs import transform_error
from cattrs.errors import ClassValidationError
from lsprotocol import types
from lsprotocol.types import ResponseErrorMessage
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerNotInitialized,
)
from pygls.io_ import StdinAsyncReader, StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    RPCNotification,
    RPCRequest,
)
from pygls.protocol.language_server import lsp_method

from .documents import DocumentWorkspace

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 30  # a 50 MB document is ~60 MB of JSON; anything near this is not a real message
_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\d+)", re.IGNORECASE)
_HEADER = re.compile(rb"[A-Za-z0-9-]+[ \t]*:")


@attrs.define
class Rejected:
    """A request that could not be read as its method's params: answered with `error`, never dispatched."""

    id: int | str | None
    method: str
    error: JsonRpcException
    jsonrpc: str = "2.0"


def _request_id(data: Any) -> tuple[bool, int | str | None]:
    """(is it a request?, the id to answer with) for a raw JSON-RPC object: a request has a method and an id;
    an id that is neither an integer nor a string is answered as null, as JSON-RPC prescribes."""
    if not isinstance(data, dict) or "method" not in data or "id" not in data:
        return False, None
    msg_id = data["id"]
    valid = isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool))
    return True, msg_id if valid else None


class CodegemmaProtocol(LanguageServerProtocol):
    """pygls' LSP protocol answering every identifiable request, with documents from documents.py."""

    def __init__(self, server: LanguageServer, converter: Any) -> None:
        super().__init__(server, converter)
        self._initialized_seen = False

    def structure_message(self, data: dict[str, Any]) -> Any:
        """pygls' object hook, reimplemented: it logs a full traceback per bad message (a flood for a hostile
        client) and answers no request whose params it cannot read."""
        if "jsonrpc" not in data:
            return data
        is_request, msg_id = _request_id(data)
        method = data.get("method")
        if is_request and msg_id is None:
            return Rejected(id=None, method=str(method)[:200],
                            error=JsonRpcInvalidRequest("a request id must be an integer or a string"))
        if "method" in data and not isinstance(method, str):
            error = JsonRpcInvalidRequest("the method must be a string")
            if is_request:
                return Rejected(id=msg_id, method=repr(method)[:200], error=error)
            raise error
        try:
            if "id" in data and "error" in data:
                return self._converter.structure(data, ResponseErrorMessage)
            if "method" not in data:
                kind = self._result_types.pop(data.get("id"), None) or JsonRPCResponseMessage
                return self._converter.structure(data, kind)
            data.setdefault("params", None)  # JSON-RPC lets a message omit params; pygls would reject it
            known = self.get_message_type(method)
            if is_request and known is not None and "id" not in attrs.fields_dict(known):
                return Rejected(id=msg_id, method=method, error=JsonRpcInvalidRequest(
                    f"{method} is a notification: it takes no id and gets no answer"))
            fallback = JsonRPCRequestMessage if is_request else JsonRPCNotification
            return self._converter.structure(data, known or fallback)
        except Exception as exc:
            why = "; ".join(transform_error(exc)) if isinstance(exc, ClassValidationError) else repr(exc)
            error = JsonRpcInvalidParams(f"invalid params for {str(method)[:100]}: {why}"[:500])
            if is_request:
                return Rejected(id=msg_id, method=str(method)[:200], error=error)
            raise error from None

    def handle_message(self, message: Any) -> None:
        """Answer what pygls would drop (rejected, pre-initialize, post-shutdown requests), then dispatch."""
        if isinstance(message, Rejected):
            log.warning("request %r (%.200s) rejected: %s", message.id, message.method, message.error.message)
            self._reply_error(message.id, message.error)
            return
        if not isinstance(message, (RPCRequest, RPCNotification)) and not hasattr(message, "jsonrpc"):
            is_request, msg_id = _request_id(message)  # a dict without "jsonrpc", a list, a number ...
            if is_request:
                self._reply_error(msg_id, JsonRpcInvalidRequest("not a JSON-RPC 2.0 message"))
            else:
                log.warning("ignoring a message that is not JSON-RPC: %.200r", message)
            return
        is_request = isinstance(message, RPCRequest)
        method = getattr(message, "method", None)
        if message.jsonrpc != self.VERSION:
            if is_request:
                self._reply_error(message.id, JsonRpcInvalidRequest('jsonrpc must be "2.0"'))
            return
        if self._workspace is None and method not in (types.INITIALIZE, types.EXIT):
            if is_request:
                self._reply_error(message.id, JsonRpcServerNotInitialized(f"{method} before initialize"))
            else:
                log.warning("ignoring %s before initialize", method)
            return
        if is_request and self._shutdown:
            self._reply_error(message.id, JsonRpcInvalidRequest(f"{method} after shutdown: only exit is accepted"))
            return
        super().handle_message(message)

    def _execute_handler(self, msg_id: Any, handler: Any, callback: Any, args: Any = None, kwargs: Any = None) -> None:
        """pygls' dispatch, forgetting each handler's future once it is done (pygls only does so for client
        requests, and kept one future per notification for the life of the process)."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda done: self._forget_future(msg_id, done))

    def _forget_future(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:  # a later message may reuse the id (notifications: None)
            self._request_futures.pop(msg_id, None)

    def _reply_error(self, msg_id: int | str | None, error: JsonRpcException) -> None:
        self._send_response(msg_id, error=error.to_response_error())  # type: ignore[arg-type]

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        if self._workspace is not None:
            raise JsonRpcInvalidRequest("initialize may be sent only once")
        steps = super().lsp_initialize(params)
        try:
            step = next(steps)
        except StopIteration as done:
            self._use_document_workspace(params)
            return done.value
        self._use_document_workspace(params)  # before the server's own initialize handler sees the workspace
        while True:
            result = yield step
            try:
                step = steps.send(result)
            except StopIteration as done:
                return done.value

    def _use_document_workspace(self, params: types.InitializeParams) -> None:
        built = self.workspace
        self._workspace = DocumentWorkspace(
            built.root_uri, self._server._text_document_sync_kind, params.workspace_folders or [],
            built.position_encoding,
        )

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls' shutdown, cancelling over a copy of the pending futures: handlers finishing on worker threads
        remove theirs meanwhile (`_forget_future`), and iterating the live dict failed the shutdown request."""
        if (handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield handler, args, None
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        self._shutdown = True

    @lsp_method(types.INITIALIZED)
    def lsp_initialized(self, *args: Any) -> Generator[Any, Any, None]:
        if self._initialized_seen:
            log.warning("ignoring a repeated initialized notification")
            return
        self._initialized_seen = True
        yield from super().lsp_initialized(*args)


async def read_messages(stop: threading.Event, reader: Any, protocol: LanguageServerProtocol) -> None:
    """The message loop: headers, then a body of Content-Length bytes, dispatched to `protocol`.

    Any line carrying a Content-Length starts a message (any case, with or without \\r, after garbage); other
    headers are skipped; a line that is not a header voids the block it interrupted, so after garbage the next
    well-formed message is read. A body that is not JSON, or not a JSON-RPC message, is logged and skipped;
    requests that can be identified are answered by the protocol. Returns at end of input.
    """
    length: int | None = None
    while not stop.is_set():
        try:
            line = await reader.readline()
        except ValueError:  # asyncio.StreamReader: a line over its limit (the rest is discarded)
            length = None
            continue
        if not line:
            return
        match = _CONTENT_LENGTH.search(line)
        if match:
            digits = match.group(1)
            length = int(digits) if len(digits) <= 12 else MAX_MESSAGE_BYTES + 1
            continue
        if line.strip():
            if b"content-length" in line.lower() or not _HEADER.match(line):
                length = None  # a Content-Length without a number, or garbage: the header block is void
            continue  # other headers (Content-Type ...) keep the length
        if length is None:
            continue  # a blank line outside a header block
        if length > MAX_MESSAGE_BYTES:
            log.error("ignoring a message of %d bytes (limit %d)", length, MAX_MESSAGE_BYTES)
            length = None
            continue
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            return
        complete, length = len(body) == length, None
        dispatch(body, protocol)
        if not complete:  # end of input inside a body
            return


def dispatch(body: bytes, protocol: LanguageServerProtocol) -> None:
    """Parse one message body and hand it to the protocol; nothing raised here stops the loop."""
    try:
        data = json.loads(body)
        # The top-level object only: pygls' object hook also turned nested objects that merely have a "jsonrpc"
        # key into messages (and consumed pending response types for them), losing the request around them.
        message = protocol.structure_message(data) if isinstance(data, dict) else data
    except RecursionError:
        log.warning("ignoring a message nested too deeply to parse")
        return
    except Exception as exc:  # not JSON, not UTF-8, or a notification whose params do not match
        log.warning("ignoring an unreadable message (%s): %.200r", type(exc).__name__, body)
        return
    try:
        protocol.handle_message(message)
    except Exception:
        log.exception("failed to handle a message")


class HardenedLanguageServer(LanguageServer):
    """pygls' LanguageServer with the protocol above and a message loop that survives any input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("protocol_cls", CodegemmaProtocol)
        super().__init__(*args, **kwargs)
        self.exit_code = 0

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log instead of pygls' window message per failed notification: a bad client must not flood the user."""
        log.error("%s: %s", getattr(source, "__name__", source), error)

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        self._stop_event = threading.Event()
        reader = StdinAsyncReader(stdin or sys.stdin.buffer, self.thread_pool)
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        self._run(read_messages(self._stop_event, reader, self.protocol))

    def start_tcp(self, host: str, port: int) -> None:
        self._stop_event = stop = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)  # type: ignore[arg-type]
            await read_messages(stop, reader, self.protocol)
            self.shutdown()

        async def serve() -> None:
            self._server = await asyncio.start_server(connection, host, port, limit=1 << 20)
            log.info("serving on %s", ", ".join(str(s.getsockname()) for s in self._server.sockets))
            async with self._server:
                await self._server.serve_forever()

        self._run(serve())

    def _run(self, main: Any) -> None:
        try:
            asyncio.run(main)
        except SystemExit as exc:  # the `exit` notification: 0 after shutdown, 1 without
            self.exit_code = exc.code if isinstance(exc.code, int) else 0
        except (BrokenPipeError, ConnectionResetError):
            log.error("the connection to the client is lost; shutting down")
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        finally:
            self.shutdown()
