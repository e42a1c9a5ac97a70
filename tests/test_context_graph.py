"""Choosing, ordering and budgeting cross-file context: re-exports, dependencies first, cycles, exact budgets,
a block that stays byte-identical while the user types, and no answer leak from the current file on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegemma_lsp.completion import CompletionRequest
from codegemma_lsp.context import ImportGraphContext, WorkspaceIndex
from codegemma_lsp.window import LineTokenizer

from tests.test_context_resolve import write

TOKENIZE = LineTokenizer(lambda text: [ord(c) for c in text])  # one id per character: budgets are easy to reason about

CORE = '''"""The core."""
from .money import Money


class Cart:
    """A shopping cart."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: list[str] = []

    def add(self, item: str, price: Money) -> None:
        """Add an item."""
        self.items.append(item)

    def total(self) -> Money:
        """Sum of the prices."""
        result = Money(0)
''' + "".join(f"        result = result + Money({i})\n" for i in range(30)) + '''        return result


def checkout(cart: Cart) -> Money:
    """Pay for everything in the cart."""
    return cart.total()


def _private_helper():
    return 1
'''
MONEY = 'class Money:\n    """An amount of money."""\n\n    def __init__(self, cents: int) -> None:\n        self.cents = cents\n'
APP = '''from shop import Cart, checkout


def buy(owner):
    cart = Cart(owner)
    cart.add("apple", None)
    total = 
    return total
'''


@pytest.fixture
def shop(tmp_path) -> Path:
    return write(tmp_path, {
        "src/shop/__init__.py": "from .core import Cart, checkout\n",
        "src/shop/core.py": CORE,
        "src/shop/money.py": MONEY,
        "app/main.py": APP.replace("total = \n", "total = checkout(cart)  # on disk only: the answer\n"),
    })


def gather(root: Path, rel: str, text: str, offset: int, budget: int = 1024, index: WorkspaceIndex | None = None,
           snippets: bool = False, shown: range | None = None, provider: ImportGraphContext | None = None):
    """The block for a cursor; the graph's own choice unless `snippets` (similar code, tests/test_snippets.py)."""
    provider = provider or ImportGraphContext(index or WorkspaceIndex([root]), snippets=snippets)
    request = CompletionRequest(uri=(root / rel).as_uri(), path=rel, text=text, offset=offset, repo=root.name)
    return provider.gather(request, budget, TOKENIZE, shown=shown)


def rendered(files) -> dict[str, str]:
    return {f.path: "".join(map(chr, f.ids)) for f in files}


def test_definitions_used_come_from_the_defining_file_dependencies_first(shop):
    files = gather(shop, "app/main.py", APP, APP.index("total = ") + len("total = "))
    texts = rendered(files)
    assert list(texts) == ["src/shop/money.py", "src/shop/core.py"]  # Money is Cart's dependency: it comes first
    core = texts["src/shop/core.py"]
    assert "class Cart:" in core and "def add(self, item: str, price: Money) -> None:" in core
    assert "def checkout(cart: Cart) -> Money:" in core
    assert "result = result + Money(29)" not in core  # a long body is elided…
    assert "        ..." in core  # …and marked
    assert "_private_helper" not in core  # unused definitions stay out
    assert "on disk only" not in "".join(texts.values())  # the current file never comes from disk
    assert "app/main.py" not in texts


def test_budget_is_never_exceeded(shop):
    text, offset = APP, APP.index("total = ") + len("total = ")
    sizes = []
    for budget in (0, 20, 60, 120, 200, 400, 800, 5000):
        files = gather(shop, "app/main.py", text, offset, budget)
        used = sum(len(f.ids) + len(TOKENIZE(f"# {f.path}\n")) + 2 for f in files)
        used += len(TOKENIZE(f"{shop.name}\n")) + 1 if files else 0
        assert used <= budget
        sizes.append(used)
    assert sizes == sorted(sizes) and sizes[-1] > sizes[3] > 0


def test_block_is_byte_identical_while_typing(shop):
    offset = APP.index("total = ") + len("total = ")
    first = gather(shop, "app/main.py", APP, offset)
    index = WorkspaceIndex([shop])
    for typed in ("c", "ch", "check", "checkout(", "checkout(ca"):
        text = APP[:offset] + typed + APP[offset:]
        assert gather(shop, "app/main.py", text, offset + len(typed), index=index) == first
    # A new line in the same function: still the same block.
    text = APP[:offset] + "0\n    x = " + APP[offset:]
    assert gather(shop, "app/main.py", text, offset + len("0\n    x = "), index=index) == first


LIB = "".join(f'def {name}(value: int) -> int:\n    """{name.title()} of a value."""\n    first = value + 1\n'
              f'    second = first * 2\n    return second\n\n\n' for name in ("alpha", "beta", "gamma"))
RUN = "from lib import alpha, beta, gamma\n\n\ndef run(v):\n    a = alpha(v)\n    b = alpha(a)\n    c = beta(b)\n    \n    return c\n"
TIGHT = 210  # fits alpha whole and beta's signature, or the other way round


class Typist:
    """One provider (so one kept block) and one document: what the block is after each new line."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.provider = ImportGraphContext(WorkspaceIndex([root]), snippets=False)
        self.text = RUN
        self.offset = RUN.index("    \n    return") + 4

    def ask(self, budget: int = TIGHT, *, ahead: bool = False, provider: ImportGraphContext | None = None):
        request = CompletionRequest(uri=(self.root / "run.py").as_uri(), path="run.py", text=self.text,
                                    offset=self.offset, repo="repo")  # a fixed header cost
        return rendered((provider or self.provider).gather(request, budget, TOKENIZE, ahead=ahead))

    def type_line(self, line: str) -> None:
        self.text = self.text[:self.offset] + line + "\n    " + self.text[self.offset:]
        self.offset += len(line) + 5

    def fresh(self, budget: int = TIGHT):
        """What a provider without memory chooses here."""
        return self.ask(budget, provider=ImportGraphContext(WorkspaceIndex([self.root]), snippets=False))


@pytest.fixture
def typist(tmp_path) -> Typist:
    return Typist(write(tmp_path, {"lib.py": LIB, "run.py": RUN}))


def test_block_stays_while_it_shows_what_the_code_uses(typist):
    first = typist.ask()
    assert "second = first * 2" in first["lib.py"] and "def beta(value: int) -> int:" in first["lib.py"]
    typist.type_line("d = beta(c) + beta(a)")  # beta now outranks alpha: alone, the choice would change
    assert typist.fresh() != first
    assert typist.ask() == first  # but the block still shows both signatures: kept, and the cache stays valid
    typist.type_line("e = gamma(d) + gamma(c) + gamma(b) + gamma(a)")  # a definition the block lacks
    changed = typist.ask()
    assert "def gamma(value: int) -> int:" in changed["lib.py"] and changed == typist.fresh()


def test_a_new_import_brings_its_file_at_once(typist):
    (typist.root / "extra.py").write_text("def delta(value: int) -> int:\n    return -value\n")
    first = typist.ask(budget=1000)
    assert list(first) == ["lib.py"]
    line = "from extra import delta\n"
    typist.text, typist.offset = line + typist.text, typist.offset + len(line)
    assert "def delta(value: int) -> int:" in typist.ask(budget=1000)["extra.py"]  # not yet used, but imported


def test_work_ahead_leaves_the_kept_block(typist):
    first = typist.ask()
    typist.type_line("e = gamma(c) + gamma(b) + gamma(a)")
    ahead = typist.ask(ahead=True)
    assert "def gamma" in ahead["lib.py"]
    typist.text, typist.offset = RUN, RUN.index("    \n    return") + 4  # the user did something else
    typist.type_line("d = beta(c) + beta(a)")
    assert typist.ask() == first  # as if nothing had been worked out ahead


def test_block_is_chosen_again_after_a_jump_an_edit_or_a_close(typist):
    first = typist.ask()
    typist.type_line("d = beta(c) + beta(a)")
    moved = typist.fresh()
    assert moved != first
    # The cursor far from where the block was chosen.
    typist.type_line("\n" * 70)
    assert typist.ask() == moved
    # A dependency edited on disk: the kept lines no longer read the same (though they are still the same lines).
    typist.text, typist.offset = RUN, RUN.index("    \n    return") + 4
    assert typist.ask() == first
    (typist.root / "lib.py").write_text(LIB.replace("Alpha of a value", "Alpha of any value"))
    assert typist.ask() == typist.fresh() == {"lib.py": first["lib.py"].replace("a value", "any value", 1)}
    # A closed document keeps nothing.
    typist.provider.forget((typist.root / "run.py").as_uri())
    typist.text, typist.offset = RUN, RUN.index("    \n    return") + 4
    (typist.root / "lib.py").write_text(LIB)
    assert typist.ask() == first
    typist.type_line("d = beta(c) + beta(a)")
    typist.provider.forget((typist.root / "run.py").as_uri())
    assert typist.ask() == moved


def test_attribute_access_brings_the_member(tmp_path):
    root = write(tmp_path, {"lib/core.py": CORE, "lib/money.py": MONEY, "lib/__init__.py": "",
                            "run.py": "from lib.core import checkout\n\n\ndef go(c):\n    c.total()\n    return checkout(c)\n"})
    text = (root / "run.py").read_text()
    core = rendered(gather(root, "run.py", text, text.index("return")))["lib/core.py"]
    assert "def total(self) -> Money:" in core and "class Cart:" in core


def test_cycles_terminate_deterministically(tmp_path):
    root = write(tmp_path, {
        "a.py": "from b import g\n\ndef f(x: int) -> int:\n    return g(x)\n",
        "b.py": "from a import f\n\ndef g(x: int) -> int:\n    return f(x)\n",
        "main.py": "from a import f\nfrom b import g\n\nprint(f(1), g(2))\n\n",
    })
    text = (root / "main.py").read_text()
    first = gather(root, "main.py", text, len(text))
    assert [f.path for f in first] == ["b.py", "a.py"]  # post-order from main: a's dependency b first
    assert gather(root, "main.py", text, len(text)) == first


def test_open_documents_and_watched_changes(shop):
    index = WorkspaceIndex([shop])
    offset = APP.index("total = ") + len("total = ")
    before = rendered(gather(shop, "app/main.py", APP, offset, index=index))["src/shop/core.py"]
    edited = CORE.replace("def checkout(cart: Cart) -> Money:", "def checkout(cart: Cart, tip: int = 0) -> Money:")
    index.set_open(shop / "src/shop/core.py", edited)
    after = rendered(gather(shop, "app/main.py", APP, offset, index=index))["src/shop/core.py"]
    assert "tip: int = 0" in after and "tip" not in before
    index.close(shop / "src/shop/core.py")
    (shop / "src/shop/core.py").write_text(CORE.replace("def checkout(cart: Cart)", "def checkout(cart: Cart, saved=1)"))
    index.changed_on_disk([shop / "src/shop/core.py"], created_or_deleted=False)
    assert "saved=1" in rendered(gather(shop, "app/main.py", APP, offset, index=index))["src/shop/core.py"]


def test_go_package_and_test_next_to_implementation(tmp_path):
    root = write(tmp_path, {
        "go.mod": "module example.com/shop\n",
        "store/store.go": "package store\n\n// New makes a store.\nfunc New(size int) *Store {\n\treturn &Store{}\n}\n",
        "store/types.go": "package store\n\ntype Store struct {\n\tItems []string\n}\n\nfunc Unused() {}\n",
        "cmd/main.go": 'package main\n\nimport "example.com/shop/store"\n\nfunc main() {\n\ts := store.New(3)\n\t_ = s\n}\n',
        "tests/test_cart.py": "def test_add():\n    cart = Cart()\n",
        "shop/cart.py": "class Cart:\n    def add(self, item):\n        return item\n",
    })
    text = (root / "cmd/main.go").read_text()
    texts = rendered(gather(root, "cmd/main.go", text, text.index("_ = s")))
    assert "func New(size int) *Store {" in texts["store/store.go"] and "// New makes a store." in texts["store/store.go"]
    assert "type Store struct {" in texts["store/types.go"]  # the same package; small files come whole
    text = (root / "tests/test_cart.py").read_text()
    assert "class Cart:" in rendered(gather(root, "tests/test_cart.py", text, len(text)))["shop/cart.py"]


def test_outside_workspace_gets_nothing(tmp_path):
    root = write(tmp_path / "ws", {"a.py": "x = 1\n"})
    elsewhere = write(tmp_path / "elsewhere", {"b.py": "from a import x\n"})
    assert gather(root, "../elsewhere/b.py", "from a import x\n", 0) == ()
    assert elsewhere.exists()


KINDS = '"""Type aliases."""\nimport typing as t\n\nHandler = t.Callable[[], None]\nTeardown = (\n    t.Callable[[Exception], None]\n)\n\n\ndef _hidden():\n' + "    x = 1\n" * 25
SEGMENT = '''class Segment:
    """A piece of text."""

    def __init__(self, text: str) -> None:
        self.text = text

    @classmethod
    def line(cls) -> "Segment":
        """A new line."""
        return cls("\\n")

    def split(self) -> list:
''' + "".join(f"        part{i} = self.text[{i}:]\n" for i in range(20)) + "        return [self]\n"
RENDER = 'from . import kinds as ft\nfrom .segment import Segment\n\n\ndef render(handler: ft.Handler):\n    first = Segment("a")\n    end = \n    return first\n'


def test_names_reachable_through_a_used_alias_or_class_are_outlined(tmp_path):
    """`ft.` on a module alias and `Segment.` on a class: the model sees what it can reach, not just what the
    file already used (the hole `ft.Teardown` / `Segment.line()` is the first use)."""
    root = write(tmp_path, {"pkg/__init__.py": "", "pkg/kinds.py": KINDS, "pkg/segment.py": SEGMENT,
                            "pkg/render.py": RENDER})
    texts = rendered(gather(root, "pkg/render.py", RENDER, RENDER.index("end = ") + len("end = ")))
    kinds, segment = texts["pkg/kinds.py"], texts["pkg/segment.py"]
    assert "Handler = t.Callable[[], None]" in kinds  # used in the file: whole
    assert "Teardown = (" in kinds and "Exception" not in kinds  # reachable: its naming line only
    assert "_hidden" not in kinds  # private names stay out
    assert 'def line(cls) -> "Segment":' in segment  # a class method reached through the class
    assert "def split" not in segment  # an instance method nobody called stays out


def test_a_long_outline_is_left_out(tmp_path):
    many = "".join(f"Name{i} = {i}\n" for i in range(30))
    root = write(tmp_path, {"pkg/__init__.py": "", "pkg/kinds.py": many, "pkg/render.py": RENDER})
    texts = rendered(gather(root, "pkg/render.py", RENDER, RENDER.index("end = ") + len("end = ")))
    assert "Name3 = 3" not in "".join(texts.values())


def test_a_new_line_after_a_function_keeps_that_function_as_the_scope(tmp_path):
    """Enter after a function's last line puts the cursor at column 0, outside every definition: its scope (whose
    names rank the definitions) stays the function just written, not a 100-line block, so the context block
    does not change on that line, and changes back one line later."""
    from codegemma_lsp.context.graph import _scope

    text = "import os\n\n\ndef first():\n    return os.sep\n\n\ndef second():\n    return 2\n\n\nvalue = 1\n\n"
    facts = WorkspaceIndex([tmp_path]).document_facts(tmp_path / "m.py", text, "python")
    assert _scope(facts, 4) == (3, 4)  # inside `first`
    assert _scope(facts, 5) == _scope(facts, 6) == (3, 4)  # blank lines after it, at column 0
    assert _scope(facts, 9) == (7, 8)
    assert _scope(facts, 12) == (-50, 99)  # after a statement that is no definition: the fixed block
