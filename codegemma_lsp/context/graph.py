"""The import graph from the current file -> what to show the model, within a token budget, dependencies first.

What to include matters most (issue 3's measurements: whole files crowd the prompt and can hurt; definitions of
the names used near the cursor help). So the unit of context is a definition, cut to what helps per token:

1. names the current file imports and uses in the function around the cursor, and imported names not used yet
   (what the user is about to type), then, as signatures only, what that function can reach through an
   imported class or module alias it uses: class/static methods (`Segment.line()`), the module's public
   names (`ft.X`);
2. the other imported names the file uses, most used first;
3. members of imported classes that the file accesses as attributes (`ctx.get_parameter_source`);
4. definitions that the chosen ones mention in their signatures, one import further (bounded depth);
5. small dependency files whole.

A definition comes whole when small, else as its signature, docstring (trimmed) and closing line, with an
elision marker for the body. Classes come as header, docstring, fields and constructor, plus the members used.
Files are emitted in dependency order (post-order walk of the import graph, so a file's dependencies precede
it and the direct imports sit nearest the current file), then the files that lent similar code, then the
current file's own similar code from outside the prompt's windows; lines in source order. Nothing here reads
the text of the cursor line, and the selection depends on the cursor only through the function that encloses
it and the lines above it, so the block stays byte-identical while the user types on a line and the KV cache
stays valid. A new line changes the counts that rank definitions; `Selection.required` lets the provider keep
its last block while that still serves (crossfile.py).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..window import Tokenize
from .imports import CLASS_KINDS, FUNCTION_KINDS, Definition, FileFacts, identifiers, line_names
from .index import WorkspaceIndex
from .languages import language_of
from .pack import Packer
from .resolve import Target, implicit, resolve
from .snippets import SHARE, SnippetFinder

SMALL_DEFINITION = 12  # lines: a definition this short comes whole
SMALL_CLASS = 20
SMALL_FILE = 25
DOC_LINES = 6  # docstring lines kept with a signature (the closing line always)
MAX_FIELDS = 12
MAX_WANTS = 400
MAX_REEXPORT_HOPS = 4
CONSTRUCTORS = frozenset({"__init__", "constructor", "new", "__new__", "__post_init__"})
OWN_FIRST = 0.3  # similarity at which the current file's best own chunk comes before the graph, not after it
MAX_OUTLINE = 24  # an outline (a class's static members, a module alias's names) longer than this is left out
_STATIC = re.compile(r"@classmethod|@staticmethod|\bstatic\b")


@dataclass(order=True)
class Want:
    """One candidate piece of context, ordered by priority."""

    priority: tuple
    path: Path = field(compare=False)
    lines: frozenset[int] = field(compare=False)
    fallback: frozenset[int] | None = field(compare=False, default=None)  # smaller version if it does not fit


@dataclass
class Usage:
    """How the current file uses names (the cursor line left out, so typing on it changes nothing)."""

    counts: Counter
    scope: Counter
    attrs: Counter
    scope_attrs: Counter
    distance: dict[str, int]  # name -> fewest top-level definitions between a use and the cursor's


def _usage(facts: FileFacts, cursor_line: int, scope_lines: tuple[int, int]) -> Usage:
    lines = facts.lines
    import_lines = {imp.line for imp in facts.imports}  # a name's own line, in multi-line imports too
    starts = sorted(d.start for d in facts.definitions if d.parent is None)
    here = bisect.bisect_right(starts, cursor_line)
    counts: Counter = Counter()
    attrs: Counter = Counter()
    distance: dict[str, int] = {}
    for i, line in enumerate(lines):
        if i != cursor_line and i not in import_lines:
            names, attributes = line_names(line)
            if not names:
                continue
            counts.update(names)
            attrs.update(attributes)
            gap = abs(bisect.bisect_right(starts, i) - here)
            for name in names:
                if distance.get(name, gap + 1) > gap:
                    distance[name] = gap
    start, end = scope_lines
    scope: Counter = Counter()
    scope_attrs: Counter = Counter()
    for i in range(max(0, start), min(end + 1, len(lines))):
        if i != cursor_line and i not in import_lines:
            names, attributes = line_names(lines[i])
            scope.update(names)
            scope_attrs.update(attributes)
    return Usage(counts, scope, attrs, scope_attrs, distance)


def _scope(facts: FileFacts, cursor_line: int) -> tuple[int, int]:
    """Lines of the innermost function around the cursor, else of its class, else of the top-level definition
    that only blank lines separate from the cursor (the cursor on a new line after a function keeps that
    function's scope, so the context block does not change there), else a fixed 100-line block."""
    lines = facts.lines
    here = lines[cursor_line] if cursor_line < len(lines) else ""
    indent = len(here) - len(here.lstrip())

    def encloses(d: Definition) -> bool:
        # A body that ends just above the cursor still encloses an indented cursor line: the parser only
        # extends it once something is typed there, and the scope must not change on that keystroke.
        if d.start > cursor_line:
            return False
        if cursor_line <= d.end:
            return True
        head = lines[d.start]
        return indent > len(head) - len(head.lstrip()) and not any(lines[i].strip() for i in range(d.end + 1, cursor_line))

    best: Definition | None = None
    for d in facts.definitions:
        if (d.kind in FUNCTION_KINDS or d.kind in CLASS_KINDS) and encloses(d):
            if best is None or (d.kind in FUNCTION_KINDS, d.start) > (best.kind in FUNCTION_KINDS, best.start):
                best = d
    if best is None:  # between top-level definitions: the one the user just finished, if nothing but blanks follow
        above = max((d for d in facts.definitions if d.parent is None and d.end < cursor_line
                     and (d.kind in FUNCTION_KINDS or d.kind in CLASS_KINDS)), key=lambda d: d.end, default=None)
        if above is not None and not any(lines[i].strip() for i in range(above.end + 1, min(cursor_line, len(lines)))):
            best = above
    if best is not None:
        return best.start, best.end
    block = cursor_line // 50 * 50
    return block - 50, block + 99


def _doc_lines(d: Definition, keep: int = DOC_LINES) -> set[int]:
    if d.doc is None:
        return set()
    a, b = d.doc
    if b - a + 1 <= keep:
        return set(range(a, b + 1))
    return set(range(a, a + keep - 1)) | {b} if keep >= 2 else set()


def head_lines(d: Definition, doc: int = DOC_LINES) -> set[int]:
    lines = set(range(d.start, d.head_end + 1)) | _doc_lines(d, doc)
    if d.tail is not None:
        lines.add(d.tail)
    return lines


def definition_lines(facts: FileFacts, index: int) -> tuple[set[int], set[int] | None]:
    """(preferred lines, smaller fallback or None) for one definition."""
    d = facts.definitions[index]
    whole = set(range(d.start, d.end + 1))
    if d.kind in CLASS_KINDS:
        if d.end - d.start + 1 <= SMALL_CLASS:
            return whole, _class_core(facts, index)
        return _class_core(facts, index), head_lines(d, 2)
    if d.end - d.start + 1 <= SMALL_DEFINITION:
        head = head_lines(d, 2)
        return whole, (head if head != whole else None)
    return head_lines(d), head_lines(d, 2)


def _class_core(facts: FileFacts, index: int) -> set[int]:
    """Header, docstring opening, constructor signature; fields only for classes without methods (records)."""
    d = facts.definitions[index]
    lines = head_lines(d, 3)
    members = [facts.definitions[m] for m in facts.members(index)]
    record = not any(m.kind in FUNCTION_KINDS and m.name not in CONSTRUCTORS for m in members)
    fields = 0
    for member in members:
        if member.kind in ("field", "variable", "constant"):
            if record and member.end - member.start < 2 and fields < MAX_FIELDS:
                lines |= set(range(member.start, member.end + 1))
                fields += 1
        elif (member.name in CONSTRUCTORS or member.name == d.name) and member.head_end - member.start < 6:
            lines |= head_lines(member, 0)
    return lines


def _name_line(facts: FileFacts, d: Definition) -> int:
    """The line that names a definition (past decorators and leading comments)."""
    return next((i for i in range(d.start, d.head_end + 1) if d.name in facts.lines[i]), d.start)


def _static_members(facts: FileFacts, index: int) -> list[int]:
    """Members reached through the class itself (`Text.from_markup`): class and static methods."""
    out = []
    for m in facts.members(index):
        d = facts.definitions[m]
        if d.kind in FUNCTION_KINDS and not d.name.startswith("_") \
                and _STATIC.search("\n".join(facts.lines[d.start:d.head_end + 1])):
            out.append(m)
    return out


def _frame(facts: FileFacts, member: Definition) -> set[int]:
    """The enclosing class's header and closing line, which a member needs to read as a member (none at top level)."""
    if member.parent is None:
        return set()
    parent = facts.definitions[member.parent]
    return set(range(parent.start, parent.head_end + 1)) | ({parent.tail} if parent.tail is not None else set())


def member_lines(facts: FileFacts, index: int) -> tuple[set[int], set[int] | None]:
    member = facts.definitions[index]
    own, fallback = definition_lines(facts, index)
    if member.parent is None:
        return own, fallback
    frame = _frame(facts, member)
    return own | frame, (fallback | frame if fallback else head_lines(member, 2) | frame)


class Selector:
    """Collects wanted pieces for one request, then packs them into the budget."""

    def __init__(self, index: WorkspaceIndex, current: Path, facts: FileFacts, cursor_line: int,
                 max_depth: int = 2) -> None:
        self.index = index
        self.current = current
        self.facts = facts
        self.scope = _scope(facts, cursor_line)
        self.usage = _usage(facts, cursor_line, self.scope)
        self.in_function = any(d.start == self.scope[0] and d.end == self.scope[1] and d.kind in FUNCTION_KINDS
                               for d in facts.definitions)
        self.max_depth = max_depth
        self.wants: list[Want] = []
        self.edges: dict[Path, list[Path]] = {}
        self.order = 0

    def _edge(self, source: Path, target: Path) -> None:
        children = self.edges.setdefault(source, [])
        if target not in children and target != source:
            children.append(target)

    def _want(self, priority: tuple, path: Path, lines: set[int], fallback: set[int] | None = None) -> None:
        if path == self.current or not lines:
            return
        self.order += 1
        self.wants.append(Want(priority + (self.order,), path, frozenset(lines), frozenset(fallback) if fallback else None))

    def _tier(self, name: str, imported: bool, kind: str = "") -> tuple:
        usage = self.usage
        if usage.scope[name] > 0:
            return (0, -usage.scope[name], -usage.counts[name])
        if imported and usage.counts[name] <= 0:
            return (1, 0, 0)
        return (2, usage.distance.get(name, 99), kind in CLASS_KINDS, -usage.counts[name])

    def find_symbol(self, path: Path, symbol: str, hops: int = 0) -> tuple[Path, FileFacts, list[int]] | None:
        """Where `symbol` is defined, following re-exports (`from .core import X` in a package's __init__)."""
        facts = self.index.facts(path)
        if facts is None:
            return None
        found = [i for i, d in enumerate(facts.definitions) if d.parent is None and d.name == symbol]
        if found:
            return path, facts, found
        if hops >= MAX_REEXPORT_HOPS:
            return None
        for imp in facts.imports:
            if imp.local == symbol or imp.kind == "wildcard":
                for target in resolve(imp, path, facts, self.index):
                    name = target.symbol or (symbol if imp.kind == "wildcard" else None)
                    if name is None:
                        continue
                    hit = self.find_symbol(target.path, name, hops + 1)
                    if hit is not None:
                        return hit
        return None

    def collect(self) -> None:
        facts, current, usage = self.facts, self.current, self.usage
        names = set(usage.counts)
        modules: list[tuple[Path, FileFacts]] = []
        for imp in facts.imports:
            # An import inside the function around the cursor (a local import) names what it is about to use.
            local_import = self.in_function and self.scope[0] <= imp.line <= self.scope[1]
            for target in resolve(imp, current, facts, self.index):
                self._import_target(imp.local or target.symbol, target, modules, local_import)
        for target in implicit(current, facts, self.index, names):
            self._import_target(None, target, modules)
        self._members(modules)
        for path, dep in modules:
            if len(dep.lines) <= SMALL_FILE:
                self._want((5, 0, 0), path, set(range(len(dep.lines))))
        if self.max_depth >= 2:
            self._second_level()

    def _import_target(self, local: str | None, target: Target, modules: list, local_import: bool = False) -> None:
        if target.symbol is not None:
            hit = self.find_symbol(target.path, target.symbol)
            if hit is not None:
                path, dep, found = hit
                self._edge(self.current, path)
                for i in found:
                    tier = self._tier(local or target.symbol, imported=True, kind=dep.definitions[i].kind)
                    if local_import:
                        tier = (0, -1000, 0)
                    lines, fallback = definition_lines(dep, i)
                    self._want(tier, path, lines, fallback)
                    if tier[0] == 0 and dep.definitions[i].kind in CLASS_KINDS:
                        self._outline(path, dep, _static_members(dep, i))
                if (path, dep) not in modules:
                    modules.append((path, dep))
                return
        dep = self.index.facts(target.path)
        if dep is None:
            return
        self._edge(self.current, target.path)
        if (target.path, dep) not in modules:
            modules.append((target.path, dep))
        unused: list[int] = []
        for i in dep.top_level():
            name = dep.definitions[i].name
            if self.usage.counts[name] > 0 or self.usage.scope[name] > 0:
                lines, fallback = definition_lines(dep, i)
                self._want(self._tier(name, False, dep.definitions[i].kind), target.path, lines, fallback)
            elif not name.startswith("_"):
                unused.append(i)
        if local and self.usage.scope[local] > 0:
            self._outline(target.path, dep, unused)

    def _outline(self, path: Path, dep: FileFacts, indices: list[int]) -> None:
        """Signatures of what the code around the cursor can reach through a name it uses but whose members it
        has not used yet: `Segment.line()` on an imported class, `ft.TeardownCallable` on a module alias. A
        longer list is left out: its signatures would push out the definitions the file already uses."""
        if len(indices) > MAX_OUTLINE:
            return
        for rank, i in enumerate(indices):
            d = dep.definitions[i]
            lines = head_lines(d, 0) if d.kind in FUNCTION_KINDS else {_name_line(dep, d)}
            self._want((1, 1, rank), path, lines | _frame(dep, d))

    def _members(self, modules: list[tuple[Path, FileFacts]]) -> None:
        """Members of the imported files' classes that the current file accesses by name."""
        usage = self.usage
        owners: Counter = Counter()
        candidates: list[tuple[str, Path, FileFacts, int]] = []
        for path, dep in modules:
            for i, d in enumerate(dep.definitions):
                if d.parent is not None and not (d.name.startswith("__") and d.name.endswith("__")) \
                        and usage.attrs[d.name] > 0:
                    owners[d.name] += 1
                    candidates.append((d.name, path, dep, i))
        for name, path, dep, i in candidates:
            if owners[name] > 3:
                continue  # too common a name to tell which class is meant
            tier = (0, -usage.scope_attrs[name], -usage.attrs[name]) if usage.scope_attrs[name] else (3, 0, -usage.attrs[name])
            lines, fallback = member_lines(dep, i)
            self._want(tier, path, lines, fallback)

    def _second_level(self) -> None:
        """Definitions that the chosen first-level ones mention in their signatures, one import further."""
        first = [w for w in self.wants if w.priority[0] <= 3]
        for want in sorted(first)[:40]:
            dep = self.index.facts(want.path)
            if dep is None:
                continue
            mentioned = set()
            for line in sorted(want.lines):
                if line < len(dep.lines):
                    mentioned.update(identifiers(dep.lines[line]))
            for imp in dep.imports:
                if imp.local not in mentioned:
                    continue
                for target in resolve(imp, want.path, dep, self.index):
                    if target.symbol is None or target.path == self.current:
                        continue
                    hit = self.find_symbol(target.path, target.symbol)
                    if hit is None:
                        continue
                    path, deeper, found = hit
                    if path == self.current:
                        continue
                    self._edge(want.path, path)
                    for i in found:
                        d = deeper.definitions[i]
                        lines = head_lines(d, 2) if d.kind not in CLASS_KINDS else _class_core(deeper, i)
                        self._want((4,) + want.priority[1:3], path, lines, head_lines(d, 1))

    def file_order(self, paths) -> list[Path]:
        """Dependencies first: post-order walk from the current file, children in import order."""
        seen: set[Path] = set()
        order: list[Path] = []

        def visit(node: Path) -> None:
            seen.add(node)
            for child in self.edges.get(node, ()):
                if child not in seen:
                    visit(child)
            order.append(node)

        visit(self.current)
        ranked = [p for p in order if p in paths and p != self.current]
        own = [self.current] if self.current in paths else []  # its own chunks go last, nearest its window
        return ranked + sorted(p for p in paths if p not in ranked and p != self.current) + own


@dataclass(frozen=True)
class Selection:
    """What `select_context` chose, with what decides whether a block chosen earlier may stand in for it."""

    files: tuple[tuple[str, tuple[int, ...]], ...]  # (workspace-relative path, content ids), in prompt order
    lines: dict[Path, frozenset[int]]  # the lines shown, per file
    required: dict[Path, frozenset[int]]  # the least of each definition that the code around the cursor uses
    imports: frozenset[Path]  # the files the current file imports
    sources: dict[Path, tuple[str, ...]]  # the lines each file was rendered from (the current file: those shown)


def select_context(index: WorkspaceIndex, current: Path, text: str, cursor_line: int, budget: int,
                   tokenize: Tokenize, repo: str = "", max_depth: int = 2,
                   snippets: SnippetFinder | None = None, shown: range | None = None) -> Selection:
    """The context files for a request, dependencies first, then the files that lent similar code (`snippets`),
    nearest the current file, and last the current file's own similar code from outside `shown`, the lines the
    prompt's windows carry."""
    spec = language_of(current)
    if spec is None or budget <= 0:
        return Selection((), {}, {}, frozenset(), {})
    facts = index.document_facts(current, text, spec.name)
    selector = Selector(index, current, facts, cursor_line, max_depth)
    selector.collect()
    packer = Packer(index, tokenize, budget, repo, document=(current, facts))
    found = snippets.find(current, spec, facts.lines, cursor_line, shown) if snippets is not None else []
    own = next((s for s in found if s.path == current), None)
    if own is not None and own.similarity >= OWN_FIRST:  # code like the cursor's in its own file is its best guide
        packer.offer(Want((-1,), current, own.lines, own.matched))
    required: dict[Path, frozenset[int]] = {}
    for want in sorted(selector.wants)[:MAX_WANTS]:
        if packer.offer(want) and want.priority[0] == 0:
            required[want.path] = required.get(want.path, frozenset()) | (want.fallback or want.lines)
        if packer.used >= budget - 4:
            break
    share = min(budget, packer.used + SHARE)
    for rank, snippet in enumerate(found):
        packer.offer(Want((9, rank), snippet.path, snippet.lines, snippet.matched), limit=share)
    files = tuple((index.relative(path), tuple(packer.render(path, packer.lines[path])))
                  for path in selector.file_order(set(packer.lines)))
    return Selection(files, {path: frozenset(lines) for path, lines in packer.lines.items()}, required,
                     frozenset(selector.edges.get(current, ())),
                     {path: packer.sources.get(path, ()) if path != current
                      else tuple(facts.lines[i] for i in sorted(packer.lines[path]) if i < len(facts.lines))
                      for path in packer.lines})
