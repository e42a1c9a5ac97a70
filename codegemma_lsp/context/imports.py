"""Source text -> the facts cross-file context needs: imports and definitions, from tree-sitter queries.

Pure: no file system access. Lines are 0-based. A definition records which lines to keep when its body is
elided (signature, docstring, closing brace) so `graph.py` can cut any file down to what a prompt needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import tree_sitter

from .languages import BY_NAME, parser, query

CLASS_KINDS = frozenset({"class", "interface", "trait", "impl", "struct", "enum"})
FUNCTION_KINDS = frozenset({"function", "method"})
WRAPPERS = frozenset({"decorated_definition", "export_statement", "template_declaration"})
_COMMENT_START = ("//", "/*", "*", "#", "--")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")


@dataclass(frozen=True)
class Import:
    """One imported thing as written. `module`: the specifier ("a.b", ".x", "./util", "crate::a::B", "x.h");
    `name`: the imported symbol where the syntax names one; `alias`: the local name; `kind`: module | from |
    wildcard | mod | use | system."""

    module: str
    name: str | None = None
    alias: str | None = None
    kind: str = "module"
    line: int = 0

    @property
    def local(self) -> str | None:
        """The name this import binds in the importing file."""
        if self.alias:
            return self.alias
        if self.name and self.name != "*":
            return self.name.split(".")[0]
        if self.kind == "module" and "." in self.module and not self.module.startswith("."):
            return self.module.split(".")[0]
        return self.module if self.kind == "module" else None


@dataclass(frozen=True)
class Definition:
    """A definition's line ranges: all of it, and what survives when its body is elided."""

    name: str
    kind: str
    start: int  # first line, decorators, wrappers and leading comments included
    end: int  # last line
    head_end: int  # last line of the signature (the line holding `{` in brace languages)
    tail: int | None  # closing line kept with an elided body (brace languages)
    doc: tuple[int, int] | None  # docstring lines (Python), kept with the head
    parent: int | None  # index of the enclosing class-like definition


@dataclass(frozen=True)
class FileFacts:
    language: str
    lines: tuple[str, ...]
    imports: tuple[Import, ...]
    definitions: tuple[Definition, ...]
    package: str | None = None  # Java's package declaration

    def top_level(self) -> list[int]:
        return self._children.get(None, [])

    def members(self, index: int) -> list[int]:
        return self._children.get(index, [])

    @cached_property
    def _children(self) -> dict[int | None, list[int]]:
        children: dict[int | None, list[int]] = {}
        for i, d in enumerate(self.definitions):
            children.setdefault(d.parent, []).append(i)
        return children


def _leading_comments(lines: list[str], start: int) -> int:
    """Extend a definition upwards over the comment lines directly above it (doc comments, attributes)."""
    while start > 0:
        above = lines[start - 1].strip()
        if not above or not (above.startswith(_COMMENT_START) or above.startswith("#[") or above.startswith("@")):
            break
        start -= 1
    return start


def _python_doc(body) -> tuple[int, int] | None:
    first = body.named_children[0] if body.named_children else None
    if first is not None and first.type == "expression_statement" and first.named_children \
            and first.named_children[0].type == "string":
        return first.start_point.row, first.end_point.row
    return None


def _expand_use(text: str) -> list[str]:
    """Rust use tree text -> flat paths: `crate::a::{b::C, D as E}` -> ["crate::a::b::C", "crate::a::D as E"]."""
    text = re.sub(r"\s+", " ", text).strip()
    brace = text.find("{")
    if brace < 0:
        return [text]
    depth, parts, start = 0, [], brace + 1
    close = len(text) - 1
    for i in range(brace, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                close = i
                break
        elif ch == "," and depth == 1:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:close])
    head = text[:brace]
    out: list[str] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        out.extend(head.rstrip(":") if p == "self" else head + p for p in _expand_use(part))
    return out


def _imports(language: str, captures: dict, node_text) -> list[Import]:
    out: list[Import] = []
    if "import.mod" in captures:
        item = captures.get("import.mod_item", [None])[0]
        if item is not None and item.child_by_field_name("body") is None:
            node = captures["import.mod"][0]
            out.append(Import(node_text(node), kind="mod", line=node.start_point.row))
        return out
    if "import.use" in captures:
        node = captures["import.use"][0]
        for path in _expand_use(node_text(node)):
            path, _, alias = path.partition(" as ")
            leaf = path.rsplit("::", 1)[-1]
            kind = "wildcard" if leaf == "*" else "use"
            out.append(Import(path.strip(), name=None if leaf == "*" else leaf, alias=alias.strip() or None,
                              kind=kind, line=node.start_point.row))
        return out
    alias = node_text(captures["import.alias"][0]) if "import.alias" in captures else None
    if "import.from" in captures:
        module = captures["import.from"][0]
        line = module.start_point.row
        if "import.wildcard" in captures:
            return [Import(node_text(module), name="*", kind="wildcard", line=line)]
        name_node = captures["import.name"][0]
        return [Import(node_text(module), name=node_text(name_node), alias=alias, kind="from",
                       line=name_node.start_point.row)]
    if "import.module" in captures:
        node = captures["import.module"][0]
        kind = "wildcard" if "import.wildcard" in captures else "module"
        return [Import(node_text(node), alias=alias, kind=kind, line=node.start_point.row)]
    if "import.system" in captures:
        node = captures["import.system"][0]
        return [Import(node_text(node).strip("<>"), kind="system", line=node.start_point.row)]
    return out


def extract(text: str, language: str) -> FileFacts:
    """Parse `text` and collect its imports and definitions (locals inside function bodies are left out)."""
    source = text.encode("utf-8", errors="surrogatepass")
    tree = parser(language).parse(source)
    lines = text.split("\n")

    def node_text(node) -> str:
        return source[node.start_byte:node.end_byte].decode("utf-8", errors="replace")

    braces = BY_NAME[language].braces
    imports: list[Import] = []
    raw: dict[tuple[int, int], tuple] = {}  # definition node range -> (node, kind, name, body)
    package = None
    for _, captures in tree_sitter.QueryCursor(query(language)).matches(tree.root_node):
        if "package" in captures:
            package = node_text(captures["package"][0])
            continue
        kind = next((k[len("definition."):] for k in captures if k.startswith("definition.")), None)
        if kind is None:
            imports.extend(_imports(language, captures, node_text))
            continue
        node = captures[f"definition.{kind}"][0]
        name_node = captures.get("name", [None])[0]
        if name_node is None:
            continue
        name = _IDENT.match(node_text(name_node).rsplit("::", 1)[-1].lstrip())  # `geo::Circle::area` -> area
        if name is None:
            continue
        body = captures.get("body", [None])[0]
        key = (node.start_byte, node.end_byte)
        if key in raw and (raw[key][3] is not None or body is None):
            continue  # the same node matched twice (JS `const f = () => {}`): keep the match with a body
        raw[key] = (node, kind, name.group(0), body)

    entries = sorted(raw.values(), key=lambda e: (e[0].start_byte, -e[0].end_byte))
    definitions: list[Definition] = []
    stack: list[tuple[int, int, int | None, str, int]] = []  # (start_byte, end_byte, body_start, kind, index)
    for node, kind, name, body in entries:
        while stack and stack[-1][1] <= node.start_byte:
            stack.pop()
        parent = None
        if stack:
            p_start, p_end, p_body, p_kind, p_index = stack[-1]
            if p_kind in FUNCTION_KINDS or p_body is None or node.start_byte < p_body:
                stack.append((node.start_byte, node.end_byte, None, kind, -1))  # local or part of a header: hidden
                continue
            if p_index < 0:
                stack.append((node.start_byte, node.end_byte, None, kind, -1))
                continue
            parent = p_index if p_kind in CLASS_KINDS else None
            if parent is None:
                stack.append((node.start_byte, node.end_byte, None, kind, -1))
                continue
        outer = node
        while outer.parent is not None and outer.parent.type in WRAPPERS:
            outer = outer.parent
        start = _leading_comments(lines, outer.start_point.row)
        end = outer.end_point.row
        if outer.end_point.column == 0 and end > start:
            end -= 1
        doc = None
        if body is None:
            head_end, tail = end, None
        elif braces:
            head_end = body.start_point.row
            tail = body.end_point.row if body.end_point.row > head_end else None
        else:
            doc = _python_doc(body)
            head_end = max(outer.start_point.row, body.start_point.row - 1)
            if body.start_point.row == outer.start_point.row:
                head_end = end
            tail = None
        definitions.append(Definition(name, kind, start, end, min(head_end, end), tail, doc, parent))
        stack.append((node.start_byte, node.end_byte, body.start_byte if body is not None else None, kind,
                      len(definitions) - 1))
    return FileFacts(language, tuple(lines), tuple(imports), tuple(definitions), package)


def identifiers(text: str) -> list[str]:
    return _IDENT.findall(text)


_ATTR = re.compile(r"(?:\.|->|::)\s*([A-Za-z_$][\w$]*)")
_LINE_NAMES: dict[str, tuple[list[str], list[str]]] = {}


def line_names(line: str) -> tuple[list[str], list[str]]:
    """(identifiers, attribute names) of one line, cached by its text: a keystroke re-scans one line."""
    found = _LINE_NAMES.get(line)
    if found is None:
        if len(_LINE_NAMES) > 200_000:
            _LINE_NAMES.clear()
        found = _LINE_NAMES[line] = (identifiers(line), _ATTR.findall(line))
    return found
