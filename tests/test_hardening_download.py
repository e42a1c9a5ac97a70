"""Download faults, the one promise tests/test_download.py does not cover: no partial or unverified file is ever
loaded. tests/test_download.py covers the rest of the issue's list against a local HTTP server: interrupted
transfers resume (test_resume_after_interruption, test_interruption_is_resumed_within_one_pull), a server closing
mid-stream (drop_after), 404 (test_404_names_the_url), 401/403 explaining HF_TOKEN
(test_gated_repo_explains_terms_and_token) and a hash mismatch deleting the partial file
(test_hash_mismatch_deletes_part).

Here the loader (alias -> download -> engine), the path the server takes, runs against the same kind of local
server with the real tiny GGUF as payload; the engine factory records every file it is asked to load.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from codegemma_lsp import download, registry
from codegemma_lsp.config import Config
from codegemma_lsp.errors import DownloadError, HashMismatch, ModelNotFound
from codegemma_lsp.loader import llama_engine, load
from tests.test_download import Handler, Server, first_then, serve

REGISTRY = """default = "tiny"
[[model]]
alias = "tiny"
family = "codegemma"
params = "tiny"
quantization = "F32"
filename = "tiny.gguf"
size = {size}
sha256 = "{sha}"
license = "test"
description = "the generated tiny GGUF"
[[model.source]]
kind = "url"
url = "{url}"
"""


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    srv = Server(("127.0.0.1", 0), Handler)
    srv.routes, srv.requests = {}, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    monkeypatch.setenv("CODEGEMMA_LSP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)
    monkeypatch.setattr(download, "TIMEOUT_S", 5.0)
    monkeypatch.setattr(download, "RESUME_RETRIES", 0)
    yield srv
    srv.shutdown()
    srv.server_close()


def use_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, payload: bytes, url: str) -> None:
    path = tmp_path / "registry.toml"
    path.write_text(REGISTRY.format(size=len(payload), sha=hashlib.sha256(payload).hexdigest(), url=url))
    monkeypatch.setattr(registry, "registry_path", lambda: path)


def test_no_partial_or_unverified_file_is_ever_loaded(http, monkeypatch, tmp_path, tiny_model):
    payload = tiny_model.read_bytes()
    use_registry(monkeypatch, tmp_path, payload, http.base + "/tiny.gguf")
    loaded: list[tuple[Path, str]] = []

    def recording(path: Path, config: Config):
        loaded.append((path, hashlib.sha256(path.read_bytes()).hexdigest()))
        return llama_engine(path, config)

    config = Config(model="tiny", n_gpu_layers=0)
    final = tmp_path / "cache" / "tiny.gguf"
    part = final.with_name("tiny.gguf.part")

    # 1. The connection drops mid-stream: an error, a .part kept for resuming, nothing loaded.
    http.routes["/tiny.gguf"] = first_then(serve(payload, drop_after=len(payload) // 3), serve(payload))
    with pytest.raises(DownloadError):
        load(config, engine_factory=recording)
    assert part.exists() and not final.exists() and loaded == []

    # 2. Offline, with only the .part on disk: "not downloaded", and the .part is not loaded.
    with pytest.raises(ModelNotFound, match="is not downloaded"):
        load(config, engine_factory=recording, download=False)
    assert loaded == []

    # 3. Wrong bytes from the server: a hash mismatch, the partial file deleted, nothing loaded.
    part.unlink()
    http.routes["/tiny.gguf"] = serve(payload[:-64] + b"\0" * 64)
    with pytest.raises(HashMismatch):
        load(config, engine_factory=recording)
    assert not part.exists() and not final.exists() and loaded == []

    # 4. A file copied in by hand at the final name, without verification: refused offline.
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ModelNotFound, match="not verified"):
        load(config, engine_factory=recording, download=False)
    assert loaded == []

    # 5. The real thing: the download resumes or restarts, is verified, and exactly that file is loaded.
    final.unlink()
    http.routes["/tiny.gguf"] = serve(payload)
    model = load(config, engine_factory=recording)
    assert loaded == [(final, hashlib.sha256(payload).hexdigest())]
    assert model.service.template.name == "codegemma"
