"""Import specifier -> workspace files, by each language's own rules, with longest-path-suffix matching as the
fallback (how CodeGemma's training data linked files). Every candidate goes through the index's confinement,
so no import, however written, reads outside the workspace folders.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .imports import FileFacts, Import
from .index import WorkspaceIndex
from .languages import FAMILY, language_of


@dataclass(frozen=True)
class Target:
    """A resolved import: the file, and the symbol it names there (None: the module as a whole)."""

    path: Path
    symbol: str | None = None


Resolver = Callable[[Import, Path, FileFacts, WorkspaceIndex], list[Target]]

_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))


def _first_file(index: WorkspaceIndex, candidates) -> Path | None:
    for candidate in candidates:
        if (found := index.is_file(candidate)) is not None:
            return found
    return None


# --- Python ---------------------------------------------------------------------------------------------------

def _python_module(index: WorkspaceIndex, base: Path) -> Path | None:
    return _first_file(index, (base.with_name(base.name + ".py"), base / "__init__.py", base.with_name(base.name + ".pyi")))


def python_roots(current: Path, index: WorkspaceIndex) -> list[Path]:
    """Where absolute imports start: the workspace folder, its src/ and lib/, then the current file's parents."""
    root = index.root_of(current)
    roots: list[Path] = []
    if root is not None:
        roots += [root, root / "src", root / "lib"]
        parent = current.parent
        while parent != root and parent.is_relative_to(root):
            roots.append(parent)
            parent = parent.parent
    return list(dict.fromkeys(roots))


def resolve_python(imp: Import, current: Path, facts: FileFacts, index: WorkspaceIndex) -> list[Target]:
    module = imp.module
    if module.startswith("."):
        dots = len(module) - len(module.lstrip("."))
        base = current.parent
        for _ in range(dots - 1):
            base = base.parent
        bases, rest = [base], module[dots:]
    else:
        bases, rest = python_roots(current, index), module
    parts = [p for p in rest.split(".") if p]
    name = imp.name if imp.kind == "from" and imp.name else None
    for base in bases:
        target = base.joinpath(*parts)
        if name is not None and (sub := _python_module(index, target / name)) is not None:
            return [Target(sub)]  # `from pkg import module`
        found = _python_module(index, target) if parts else index.is_file(target / "__init__.py")
        if found is not None:
            return [Target(found, name)]
    if module.startswith(".") or not parts or (len(parts) == 1 and parts[0] in _STDLIB) or parts[0] in _STDLIB:
        return []
    rel = "/".join(parts)
    for candidate in (f"{rel}.py", f"{rel}/__init__.py"):
        found = index.suffix_match(candidate, current, min_parts=len(parts) + (candidate.endswith("__init__.py")))
        if found is not None:
            return [Target(found, name)]
    return []


# --- JavaScript / TypeScript ---------------------------------------------------------------------------------

JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")


def _js_file(index: WorkspaceIndex, base: Path) -> Path | None:
    candidates = [base]
    stem = base.name
    if base.suffix in (".js", ".jsx", ".mjs", ".cjs"):  # TS sources imported by their emitted name
        trimmed = stem[: -len(base.suffix)]
        candidates += [base.with_name(trimmed + ext) for ext in (".ts", ".tsx", ".mts", ".cts")]
    candidates += [base.with_name(stem + ext) for ext in JS_EXTENSIONS]
    candidates += [base / f"index{ext}" for ext in JS_EXTENSIONS]
    found = _first_file(index, candidates)
    if found is None and index.is_file(base / "package.json") is not None:
        try:
            main = json.loads(index.text(base / "package.json") or "{}")
            entry = main.get("types") or main.get("module") or main.get("main")
            if isinstance(entry, str):
                found = _first_file(index, [base / entry])
        except (ValueError, AttributeError):
            pass
    return found


def _strip_jsonc(text: str) -> str:
    text = re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', lambda m: m.group(1) or "", text, flags=re.S)
    return re.sub(r",(\s*[}\]])", r"\1", text)


@lru_cache(maxsize=256)
def _parse_tsconfig(text: str) -> dict:
    try:
        data = json.loads(_strip_jsonc(text))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _tsconfig(current: Path, index: WorkspaceIndex) -> tuple[Path, dict] | None:
    root = index.root_of(current)
    directory = current.parent
    while root is not None and directory.is_relative_to(root):
        for name in ("tsconfig.json", "jsconfig.json"):
            text = index.text(directory / name) if index.is_file(directory / name) else None
            if text is not None:
                return directory, _parse_tsconfig(text).get("compilerOptions") or {}
        if directory == root:
            break
        directory = directory.parent
    return None


def resolve_js(imp: Import, current: Path, facts: FileFacts, index: WorkspaceIndex) -> list[Target]:
    spec = imp.module
    if spec.startswith("."):
        found = _js_file(index, current.parent / spec)
        return [Target(found)] if found else []
    if spec.startswith("/"):
        return []
    config = _tsconfig(current, index)
    if config is not None:
        directory, options = config
        base = directory / str(options.get("baseUrl", "."))
        paths = options.get("paths") if isinstance(options.get("paths"), dict) else {}
        for pattern, targets in sorted(paths.items(), key=lambda kv: -len(kv[0])):
            prefix, star, suffix = pattern.partition("*")
            if star and spec.startswith(prefix) and spec.endswith(suffix) and len(spec) >= len(prefix) + len(suffix):
                matched = spec[len(prefix): len(spec) - len(suffix)]
            elif not star and spec == pattern:
                matched = ""
            else:
                continue
            for target in targets if isinstance(targets, list) else []:
                found = _js_file(index, base / str(target).replace("*", matched))
                if found:
                    return [Target(found)]
        if "baseUrl" in options and (found := _js_file(index, base / spec)):
            return [Target(found)]
    return []


# --- Go ---------------------------------------------------------------------------------------------------------

def _go_module(current: Path, index: WorkspaceIndex) -> tuple[Path, str] | None:
    root = index.root_of(current)
    directory = current.parent
    while root is not None and directory.is_relative_to(root):
        text = index.text(directory / "go.mod")
        if text is not None:
            match = re.search(r"^\s*module\s+(\S+)", text, re.M)
            if match:
                return directory, match.group(1).strip('"')
        if directory == root:
            break
        directory = directory.parent
    return None


def go_package(directory: Path, index: WorkspaceIndex, tests: bool = False) -> list[Target]:
    return [Target(p) for p in index.list_dir(directory)
            if p.suffix == ".go" and (tests or not p.name.endswith("_test.go"))]


def resolve_go(imp: Import, current: Path, facts: FileFacts, index: WorkspaceIndex) -> list[Target]:
    spec = imp.module
    module = _go_module(current, index)
    if module is not None:
        directory, name = module
        if spec == name or spec.startswith(name + "/"):
            return go_package(directory / spec[len(name):].lstrip("/"), index)
    if "." not in spec.split("/")[0]:
        return []  # the standard library
    parts = spec.split("/")  # vendored or multi-module: the directory with the longest matching path suffix
    best: tuple[int, Path] | None = None
    for path in index.files():
        if path.suffix != ".go":
            continue
        rel = path.parent.parts
        n = 0
        while n < min(len(rel), len(parts)) and rel[-1 - n] == parts[-1 - n]:
            n += 1
        if n >= 2 and (best is None or n > best[0]):
            best = (n, path.parent)
    return go_package(best[1], index) if best else []


# --- Rust -------------------------------------------------------------------------------------------------------

def _rust_mod_dir(current: Path) -> Path:
    return current.parent if current.name in ("lib.rs", "main.rs", "mod.rs") else current.parent / current.stem


def _rust_crate_src(current: Path, index: WorkspaceIndex) -> Path | None:
    root = index.root_of(current)
    directory = current.parent
    while root is not None and directory.is_relative_to(root):
        if index.is_file(directory / "Cargo.toml") is not None:
            return directory / "src"
        if directory == root:
            break
        directory = directory.parent
    return None


def _rust_module_file(index: WorkspaceIndex, base: Path) -> Path | None:
    return _first_file(index, (base.with_name(base.name + ".rs"), base / "mod.rs"))


def resolve_rust(imp: Import, current: Path, facts: FileFacts, index: WorkspaceIndex) -> list[Target]:
    if imp.kind == "mod":
        found = _rust_module_file(index, _rust_mod_dir(current) / imp.module)
        return [Target(found)] if found else []
    segments = [s for s in imp.module.split("::") if s]
    if segments and segments[-1] == "*":
        segments = segments[:-1]
    crate_src = _rust_crate_src(current, index)
    bases: list[tuple[Path, list[str]]] = []
    if segments and segments[0] == "crate" and crate_src is not None:
        bases.append((crate_src, segments[1:]))
    elif segments and segments[0] in ("self", "super"):
        base = _rust_mod_dir(current)
        rest = segments
        while rest and rest[0] in ("self", "super"):
            if rest[0] == "super":
                base = base.parent
            rest = rest[1:]
        bases.append((base, rest))
    else:
        bases.append((_rust_mod_dir(current), segments))
        if crate_src is not None:
            bases.append((crate_src, segments))
    for base, rest in bases:
        for k in range(len(rest), 0, -1):
            found = _rust_module_file(index, base.joinpath(*rest[:k]))
            if found is not None:
                return [Target(found, rest[k] if k < len(rest) else None)]
        if rest and base == crate_src:
            root_file = _first_file(index, (base / "lib.rs", base / "main.rs"))
            if root_file is not None and root_file != current:
                return [Target(root_file, rest[0])]
    return []


# --- Java -------------------------------------------------------------------------------------------------------

def _java_source_root(current: Path, facts: FileFacts) -> Path:
    depth = len(facts.package.split(".")) if facts.package else 0
    root = current.parent
    for _ in range(depth):
        root = root.parent
    return root


def resolve_java(imp: Import, current: Path, facts: FileFacts, index: WorkspaceIndex) -> list[Target]:
    parts = imp.module.split(".")
    source_root = _java_source_root(current, facts)
    if imp.kind == "wildcard":
        files = index.list_dir(source_root.joinpath(*parts))
        if files:
            return [Target(p) for p in files if p.suffix == ".java"]
    for k in range(len(parts), 0, -1):
        found = index.is_file(source_root.joinpath(*parts[:k - 1], parts[k - 1] + ".java"))
        if found is not None:
            return [Target(found, parts[k] if k < len(parts) else None)]
    for k in range(len(parts), 1, -1):
        found = index.suffix_match("/".join(parts[:k]) + ".java", current, min_parts=2)
        if found is not None:
            return [Target(found, parts[k] if k < len(parts) else None)]
    return []


# --- C / C++ ----------------------------------------------------------------------------------------------------

def resolve_c(imp: Import, current: Path, facts: FileFacts, index: WorkspaceIndex) -> list[Target]:
    spec = imp.module
    if spec.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", spec):
        return []  # absolute includes are never followed
    root = index.root_of(current)
    bases = [] if imp.kind == "system" else [current.parent]
    if root is not None:
        bases += [root / "include", root / "src", root]
    found = _first_file(index, (base / spec for base in bases))
    if found is None and imp.kind != "system":
        parts = [p for p in spec.split("/") if p not in ("", ".", "..")]
        found = index.suffix_match("/".join(parts), current, min_parts=min(2, len(parts)))
    return [Target(found)] if found else []


RESOLVERS: dict[str, Resolver] = {
    "python": resolve_python, "js": resolve_js, "go": resolve_go, "rust": resolve_rust, "java": resolve_java,
    "c": resolve_c,
}


def resolve(imp: Import, current: Path, facts: FileFacts, index: WorkspaceIndex) -> list[Target]:
    """Workspace files an import refers to (confined; the current file itself is never among them)."""
    resolver = RESOLVERS.get(FAMILY.get(facts.language, ""))
    if resolver is None:
        return []
    memo = index.memo()
    key = ("resolve", current, imp, facts.package)
    if key not in memo:
        memo[key] = [t for t in resolver(imp, current, facts, index) if t.path != current]
    return memo[key]


def implicit(current: Path, facts: FileFacts, index: WorkspaceIndex, names: set[str]) -> list[Target]:
    """Files visible without an import: the Go package's other files, same-package Java classes that the file
    names, and the implementation a unit-test file tests (tests sit next to their code)."""
    out: list[Target] = []
    family = FAMILY.get(facts.language)
    if family == "go":
        out += go_package(current.parent, index, tests=current.name.endswith("_test.go"))
    elif family == "java":
        out += [Target(p) for p in index.list_dir(current.parent) if p.suffix == ".java" and p.stem in names]
    implementation = implementation_of(current, index)
    if implementation is not None:
        out.append(Target(implementation))
    return [t for t in out if t.path != current]


_TEST_PATTERNS = (
    (re.compile(r"^test_(.+)(\.py)$"), r"\1\2"),
    (re.compile(r"^(.+)_test(\.py|\.go|\.cc|\.cpp|\.c)$"), r"\1\2"),
    (re.compile(r"^(.+)\.(?:test|spec)(\.[jt]sx?|\.mjs|\.cjs)$"), r"\1\2"),
    (re.compile(r"^(.+)Tests?(\.java)$"), r"\1\2"),
)


def implementation_of(current: Path, index: WorkspaceIndex) -> Path | None:
    """`test_foo.py` -> `foo.py`, `foo_test.go` -> `foo.go`, `foo.test.ts` -> `foo.ts`, `FooTest.java` -> `Foo.java`:
    beside the test, else the workspace file with the longest matching path suffix."""
    for pattern, replacement in _TEST_PATTERNS:
        if pattern.match(current.name):
            name = pattern.sub(replacement, current.name)
            found = index.is_file(current.parent / name)
            if found is None and language_of(name) is not None:
                found = index.suffix_match(name, current)
            return found if found != current else None
    return None
