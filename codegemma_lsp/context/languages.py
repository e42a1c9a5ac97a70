"""Languages the cross-file context understands: file extensions, tree-sitter grammars and query files.

Grammars come from the per-language wheels (tree-sitter-python, -javascript, -typescript, -go, -rust, -java,
-c, -cpp), which ship compiled parsers and work offline. Queries are data: `codegemma_lsp/queries/<name>.scm`.
Adding a language is a grammar wheel, a query file, a row here and a resolver in `resolve.py`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePath

import tree_sitter

QUERIES_DIR = Path(__file__).resolve().parents[1] / "queries"


@dataclass(frozen=True)
class LanguageSpec:
    name: str
    module: str  # grammar wheel's Python module
    function: str  # its function returning the language pointer
    query: str  # query file stem under queries/
    extensions: tuple[str, ...]
    comment: str  # marker for elided lines
    braces: bool  # bodies end with a closing line worth keeping


LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", "tree_sitter_python", "language", "python", (".py", ".pyi"), "...", False),
    LanguageSpec("javascript", "tree_sitter_javascript", "language", "javascript", (".js", ".jsx", ".mjs", ".cjs"), "// ...", True),
    LanguageSpec("typescript", "tree_sitter_typescript", "language_typescript", "typescript", (".ts", ".mts", ".cts"), "// ...", True),
    LanguageSpec("tsx", "tree_sitter_typescript", "language_tsx", "typescript", (".tsx",), "// ...", True),
    LanguageSpec("go", "tree_sitter_go", "language", "go", (".go",), "// ...", True),
    LanguageSpec("rust", "tree_sitter_rust", "language", "rust", (".rs",), "// ...", True),
    LanguageSpec("java", "tree_sitter_java", "language", "java", (".java",), "// ...", True),
    LanguageSpec("c", "tree_sitter_c", "language", "c", (".c", ".h"), "// ...", True),
    LanguageSpec("cpp", "tree_sitter_cpp", "language", "cpp", (".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".inl"), "// ...", True),
)
BY_EXTENSION = {ext: spec for spec in LANGUAGES for ext in spec.extensions}
BY_NAME = {spec.name: spec for spec in LANGUAGES}

# Files whose imports resolve through the same rules (a .ts file may import a .js one, C++ includes C headers).
FAMILY = {"python": "python", "javascript": "js", "typescript": "js", "tsx": "js", "go": "go", "rust": "rust",
          "java": "java", "c": "c", "cpp": "c"}


def language_of(path: PurePath | str) -> LanguageSpec | None:
    name = str(path).lower()
    dot = name.rfind(".")
    return BY_EXTENSION.get(name[dot:]) if dot >= 0 else None


@lru_cache(maxsize=None)
def grammar(name: str) -> tree_sitter.Language:
    spec = BY_NAME[name]
    return tree_sitter.Language(getattr(importlib.import_module(spec.module), spec.function)())


@lru_cache(maxsize=None)
def query(name: str) -> tree_sitter.Query:
    spec = BY_NAME[name]
    return tree_sitter.Query(grammar(name), (QUERIES_DIR / f"{spec.query}.scm").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def parser(name: str) -> tree_sitter.Parser:
    return tree_sitter.Parser(grammar(name))
