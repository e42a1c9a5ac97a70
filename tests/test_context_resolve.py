"""Resolution of import specifiers to workspace files, language by language, and confinement."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from codegemma_lsp.context.imports import extract
from codegemma_lsp.context import index as index_module
from codegemma_lsp.context.index import WorkspaceIndex
from codegemma_lsp.context.languages import language_of
from codegemma_lsp.context.resolve import resolve, implementation_of


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root.resolve()


def targets(root: Path, rel: str, index: WorkspaceIndex | None = None) -> dict[str, list[tuple[str, str | None]]]:
    """module specifier -> [(resolved workspace-relative path, symbol)] for every import of `rel`."""
    index = index or WorkspaceIndex([root])
    path = root / rel
    facts = extract(path.read_text(), language_of(path).name)
    out: dict[str, list[tuple[str, str | None]]] = {}
    for imp in facts.imports:
        key = imp.module + (f":{imp.name}" if imp.name and imp.kind == "from" else "")
        out[key] = [(index.relative(t.path), t.symbol) for t in resolve(imp, path, facts, index)]
    return out


def test_python_absolute_relative_src_layout_and_submodules(tmp_path):
    root = write(tmp_path, {
        "src/shop/__init__.py": "from .cart import Cart as Cart\n",
        "src/shop/cart.py": "class Cart:\n    pass\n",
        "src/shop/util/__init__.py": "",
        "src/shop/util/money.py": "def fmt(x):\n    return x\n",
        "src/shop/checkout.py": "import os\nimport shop.cart\nfrom shop import Cart\nfrom . import cart\n"
                                "from .util.money import fmt\nfrom .util import money\nfrom ..outside import x\n",
        "tests/test_cart.py": "from shop.cart import Cart\nimport requests\n",
    })
    got = targets(root, "src/shop/checkout.py")
    assert got["os"] == []  # the standard library
    assert got["shop.cart"] == [("src/shop/cart.py", None)]
    assert got["shop:Cart"] == [("src/shop/__init__.py", "Cart")]  # the re-export is followed in graph.py
    assert got[".:cart"] == [("src/shop/cart.py", None)]  # `from . import module`
    assert got[".util.money:fmt"] == [("src/shop/util/money.py", "fmt")]
    assert got[".util:money"] == [("src/shop/util/money.py", None)]
    assert got["..outside:x"] == []
    tests = targets(root, "tests/test_cart.py")
    assert tests["shop.cart:Cart"] == [("src/shop/cart.py", "Cart")]
    assert tests["requests"] == []


def test_python_longest_suffix_fallback(tmp_path):
    root = write(tmp_path, {
        "services/api/vendor/acme/models.py": "class User: ...\n",
        "services/api/app.py": "from acme.models import User\n",
        "other/models.py": "",
    })
    assert targets(root, "services/api/app.py")["acme.models:User"] == [("services/api/vendor/acme/models.py", "User")]


def test_js_ts_relative_index_and_tsconfig_paths(tmp_path):
    root = write(tmp_path, {
        "tsconfig.json": '{\n  // comment\n  "compilerOptions": {"baseUrl": ".", "paths": {"@app/*": ["src/app/*"],},},\n}\n',
        "src/app/store/index.ts": "export class Store {}\n",
        "src/app/util.ts": "export const x = 1;\n",
        "src/lib/helpers.js": "export function h() {}\n",
        "src/lib/emitted.ts": "export const e = 1;\n",
        "src/main.tsx": 'import { Store } from "@app/store";\nimport { x } from "./app/util";\n'
                        'import { h } from "./lib/helpers.js";\nimport { e } from "./lib/emitted.js";\n'
                        'import React from "react";\nimport abs from "/etc/passwd";\n',
    })
    got = targets(root, "src/main.tsx")
    assert got["@app/store"] == [("src/app/store/index.ts", None)]
    assert got["./app/util"] == [("src/app/util.ts", None)]
    assert got["./lib/helpers.js"] == [("src/lib/helpers.js", None)]
    assert got["./lib/emitted.js"] == [("src/lib/emitted.ts", None)]
    assert got["react"] == [] and got["/etc/passwd"] == []


def test_go_module_path(tmp_path):
    root = write(tmp_path, {
        "go.mod": "module example.com/shop\n\ngo 1.22\n",
        "store/store.go": "package store\n\nfunc New() *Store { return nil }\n",
        "store/types.go": "package store\n\ntype Store struct{}\n",
        "store/store_test.go": "package store\n",
        "cmd/main.go": 'package main\n\nimport (\n\t"fmt"\n\t"example.com/shop/store"\n)\n',
    })
    got = targets(root, "cmd/main.go")
    assert got["fmt"] == []
    assert got["example.com/shop/store"] == [("store/store.go", None), ("store/types.go", None)]


def test_rust_mod_and_use_crate(tmp_path):
    root = write(tmp_path, {
        "Cargo.toml": "[package]\nname = \"shop\"\n",
        "src/lib.rs": "mod net;\nmod config;\npub use crate::net::client::Client;\n",
        "src/config.rs": "pub struct Config;\n",
        "src/net/mod.rs": "pub mod client;\nuse super::config::Config;\n",
        "src/net/client.rs": "pub struct Client;\n",
    })
    got = targets(root, "src/lib.rs")
    assert got["net"] == [("src/net/mod.rs", None)]
    assert got["config"] == [("src/config.rs", None)]
    assert got["crate::net::client::Client"] == [("src/net/client.rs", "Client")]
    inner = targets(root, "src/net/mod.rs")
    assert inner["client"] == [("src/net/client.rs", None)]
    assert inner["super::config::Config"] == [("src/config.rs", "Config")]


def test_java_packages(tmp_path):
    root = write(tmp_path, {
        "src/main/java/com/acme/util/Strings.java": "package com.acme.util;\npublic class Strings {}\n",
        "src/main/java/com/acme/model/User.java": "package com.acme.model;\npublic class User {}\n",
        "src/main/java/com/acme/model/Order.java": "package com.acme.model;\npublic class Order {}\n",
        "src/main/java/com/acme/app/Main.java": "package com.acme.app;\nimport com.acme.util.Strings;\n"
                                                "import com.acme.model.*;\nimport java.util.List;\n"
                                                "import static com.acme.util.Strings.len;\n",
    })
    got = targets(root, "src/main/java/com/acme/app/Main.java")
    assert got["com.acme.util.Strings"] == [("src/main/java/com/acme/util/Strings.java", None)]
    assert got["com.acme.model"] == [("src/main/java/com/acme/model/Order.java", None),
                                     ("src/main/java/com/acme/model/User.java", None)]
    assert got["java.util.List"] == []
    assert got["com.acme.util.Strings.len"] == [("src/main/java/com/acme/util/Strings.java", "len")]


def test_c_cpp_quoted_includes(tmp_path):
    root = write(tmp_path, {
        "include/shop/cart.h": "int cart_size(void);\n",
        "src/util.h": "#define MAX 3\n",
        "src/lib/deep/money.hpp": "double fmt(double);\n",
        "src/main.c": '#include <stdio.h>\n#include "util.h"\n#include "shop/cart.h"\n#include "deep/money.hpp"\n'
                      '#include "/etc/passwd"\n#include "../../../etc/passwd"\n',
    })
    got = targets(root, "src/main.c")
    assert got["stdio.h"] == []
    assert got["util.h"] == [("src/util.h", None)]
    assert got["shop/cart.h"] == [("include/shop/cart.h", None)]
    assert got["deep/money.hpp"] == [("src/lib/deep/money.hpp", None)]  # longest path suffix
    assert got["/etc/passwd"] == [] and got["../../../etc/passwd"] == []


def test_implementation_of_sits_next_to_its_test(tmp_path):
    root = write(tmp_path, {"src/pkg/cart.py": "", "tests/test_cart.py": "", "web/cart.test.ts": "", "web/cart.ts": ""})
    index = WorkspaceIndex([root])
    assert implementation_of(root / "tests/test_cart.py", index) == root / "src/pkg/cart.py"
    assert implementation_of(root / "web/cart.test.ts", index) == root / "web/cart.ts"
    assert implementation_of(root / "src/pkg/cart.py", index) is None


def test_confinement_symlinks_dotdot_skips_and_sizes(tmp_path):
    outside = tmp_path / "outside"
    write(outside, {"secret.py": "TOKEN = 'x'\n", "lib/mod.py": "def f(): ...\n"})
    root = write(tmp_path / "ws", {
        "app.py": "from secret import TOKEN\nfrom link.mod import f\nfrom ..outside.secret import TOKEN\n",
        ".venv/lib/pkg.py": "x = 1\n",
        "node_modules/pkg/index.js": "",
        "big.py": "x = 1\n" * 200_000,
        "blob.py": "\0\0binary",
    })
    os.symlink(outside / "lib", root / "link")
    os.symlink(outside / "secret.py", root / "secret.py")
    index = WorkspaceIndex([root])
    got = targets(root, "app.py", index)
    assert got == {"secret:TOKEN": [], "link.mod:f": [], "..outside.secret:TOKEN": []}
    assert index.text(root / "link" / "mod.py") is None
    assert index.text(root / ".." / "outside" / "secret.py") is None
    assert index.text(root / ".venv/lib/pkg.py") is None
    assert index.text(root / "node_modules/pkg/index.js") is None
    assert index.text(root / "big.py") is None and index.text(root / "blob.py") is None
    assert index.text(root / "app.py") is not None
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.py")
        assert index.text(root / "pipe.py") is None  # never blocks on a FIFO
    assert all(p.is_relative_to(root) and ".venv" not in p.parts for p in index.files())


def test_open_documents_win_over_disk(tmp_path):
    root = write(tmp_path, {"a.py": "def old(): ...\n"})
    index = WorkspaceIndex([root])
    assert [d.name for d in index.facts(root / "a.py").definitions] == ["old"]
    index.set_open(root / "a.py", "def new(): ...\n")
    assert [d.name for d in index.facts(root / "a.py").definitions] == ["new"]
    index.close(root / "a.py")
    (root / "a.py").write_text("def saved(): ...\n\n")
    index.changed_on_disk([root / "a.py"], created_or_deleted=False)
    assert [d.name for d in index.facts(root / "a.py").definitions] == ["saved"]


def test_edits_do_not_wait_for_a_file_walk_and_a_walk_overtaken_by_new_files_is_redone(tmp_path):
    root = write(tmp_path, {"a.py": "A = 1\n"})
    index = WorkspaceIndex([root])
    entered, release = threading.Event(), threading.Event()
    walk = index._walk

    def slow_walk(folder):  # lists the folder, then takes its time before handing the list over
        found = list(walk(folder))
        entered.set()
        release.wait(10)
        return found

    index._walk = slow_walk
    listed: list = []
    walker = threading.Thread(target=lambda: listed.append(index.files()))
    walker.start()
    assert entered.wait(10)
    started = time.monotonic()
    index.set_open(root / "b.py", "B = 2\n")  # an edit while the walk runs
    (root / "c.py").write_text("C = 3\n")
    index.changed_on_disk([root / "c.py"])  # a created file: the walk under way is stale
    assert time.monotonic() - started < 1 and index.file_count() is None
    release.set()
    walker.join(10)
    assert [p.name for p in listed[0]] == ["a.py", "c.py"] and index.file_count() == 2


def test_texts_read_from_disk_are_kept_within_a_bound_and_read_again_after(tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "MAX_DISK_CHARS", 100)
    root = write(tmp_path, {f"m{i}.py": f"VALUE_{i} = {'x' * 30!r}\n" for i in range(10)})
    index = WorkspaceIndex([root])
    assert all(index.text(root / f"m{i}.py") == f"VALUE_{i} = {'x' * 30!r}\n" for i in range(10))
    assert len(index._disk) == 2 and index._disk.weight <= 100  # 45 characters each: two fit
    assert index.text(root / "m0.py").startswith("VALUE_0 = ")  # dropped, read again
