"""What post-processing knows about a language: tree-sitter grammars by file extension, and the lexical rules
(comments, quotes) that bracket balancing needs.

The grammars are optional wheels (`tree-sitter-python`, …); a language whose grammar is missing simply skips the
syntax check. Parsers are built once per language and reused; only the window text around the cursor is parsed.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

# File extension -> language name.
EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".tsx": "tsx", ".go": "go", ".rs": "rust",
    ".java": "java", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
}

# Language name -> (grammar module, function returning the language pointer).
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}


@dataclass(frozen=True)
class Lexical:
    """Just enough lexing to tell code from strings and comments when counting brackets."""

    line_comments: tuple[str, ...] = ("//",)
    block_comment: tuple[str, str] | None = ("/*", "*/")
    quotes: tuple[str, ...] = ('"', "'")
    triple_quotes: bool = False


LEXICAL = {
    "python": Lexical(line_comments=("#",), block_comment=None, triple_quotes=True),
    "javascript": Lexical(quotes=('"', "'", "`")),
    "typescript": Lexical(quotes=('"', "'", "`")),
    "tsx": Lexical(quotes=('"', "'", "`")),
    "go": Lexical(quotes=('"', "'", "`")),
    "rust": Lexical(quotes=('"',)),  # a lone ' is a lifetime as often as a char literal
}
DEFAULT_LEXICAL = Lexical()


def language_for(path: str) -> str:
    """The language of a file from its extension; "" when unknown."""
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower(), "")


def lexical(language: str) -> Lexical:
    return LEXICAL.get(language, DEFAULT_LEXICAL)


_local = threading.local()  # tree-sitter parsers are not shared between threads


@lru_cache(maxsize=None)
def _language(name: str):
    entry = GRAMMARS.get(name)
    if entry is None:
        return None
    try:
        import tree_sitter

        module = importlib.import_module(entry[0])
        return tree_sitter.Language(getattr(module, entry[1])())
    except (ImportError, AttributeError, ValueError):
        return None


def _parser(name: str):
    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if name not in parsers:
        language = _language(name)
        if language is None:
            parsers[name] = None
        else:
            import tree_sitter

            parsers[name] = tree_sitter.Parser(language)
    return parsers[name]


def error_count(text: str, language: str) -> int | None:
    """Number of ERROR and MISSING nodes tree-sitter finds in `text`; None without a grammar."""
    parser = _parser(language) if language else None
    if parser is None:
        return None
    tree = parser.parse(text.encode("utf-8", errors="surrogatepass"))  # a lone surrogate must not raise
    count = 0
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count
