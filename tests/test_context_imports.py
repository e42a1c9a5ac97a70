"""Extraction: every language's query file parses, and imports and definitions come out of real-looking code."""

from __future__ import annotations

import pytest

from codegemma_lsp.context.imports import extract
from codegemma_lsp.context.languages import LANGUAGES, language_of, query


@pytest.mark.parametrize("name", [spec.name for spec in LANGUAGES])
def test_every_query_file_compiles(name):
    assert query(name).pattern_count > 0


def test_language_by_extension():
    assert language_of("a/b.py").name == "python"
    assert language_of("x.tsx").name == "tsx"
    assert language_of("x.hpp").name == "cpp"
    assert language_of("README.md") is None


def defs(facts):
    return [(d.name, d.kind, facts.definitions[d.parent].name if d.parent is not None else None)
            for d in facts.definitions]


def test_python_imports_definitions_and_docstrings():
    source = '''"""Module."""
import os.path
import typing as t
from . import utils
from ..core import Context, Command as Cmd
from .types import *


@t.overload
def get(silent: bool = False) -> Context: ...


class Group(Cmd):
    """A group of commands.

    More text.
    """

    name: str = "group"

    def add(self, command: Cmd) -> None:
        """Add a command."""
        def local():
            pass
        self.commands.append(command)
'''
    facts = extract(source, "python")
    imports = [(i.module, i.name, i.alias, i.kind, i.local) for i in facts.imports]
    assert imports == [
        ("os.path", None, None, "module", "os"),
        ("typing", None, "t", "module", "t"),
        (".", "utils", None, "from", "utils"),
        ("..core", "Context", None, "from", "Context"),
        ("..core", "Command", "Cmd", "from", "Cmd"),
        (".types", "*", None, "wildcard", None),
    ]
    assert defs(facts) == [("get", "function", None), ("Group", "class", None), ("name", "field", "Group"),
                           ("add", "function", "Group")]
    get, group, _, add = facts.definitions
    assert facts.lines[get.start] == "@t.overload"  # decorators belong to the definition
    line = facts.lines.index
    assert group.head_end == line("class Group(Cmd):")
    assert group.doc == (line('    """A group of commands.'), line('    """'))
    assert add.doc == (line('        """Add a command."""'),) * 2


def test_javascript_and_typescript_imports():
    js = extract('import a, {b as c} from "./util";\nexport * from "../lib/index.js";\n'
                 'const fs = require("fs");\nconst lazy = import("./lazy");\n'
                 '/** Adds. */\nexport function add(x, y) {\n  return x + y;\n}\n'
                 'export const sub = (x, y) => {\n  return x - y;\n};\nclass K {\n  m() {\n    return 1;\n  }\n}\n',
                 "javascript")
    assert [i.module for i in js.imports] == ["./util", "../lib/index.js", "fs", "./lazy"]
    assert ("add", "function", None) in defs(js) and ("sub", "function", None) in defs(js)
    assert ("m", "method", "K") in defs(js)
    add = next(d for d in js.definitions if d.name == "add")
    assert js.lines[add.start] == "/** Adds. */" and add.tail == add.end

    ts = extract('import type { Opts } from "@app/types";\ninterface Point {\n  x: number;\n  y: number;\n}\n'
                 'type Id = string;\nexport enum Color { Red, Green }\n', "typescript")
    assert [i.module for i in ts.imports] == ["@app/types"]
    assert {("Point", "interface", None), ("x", "field", "Point"), ("Id", "type", None),
            ("Color", "enum", None)} <= set(defs(ts))


def test_go_rust_java_c_cpp():
    go = extract('package main\n\nimport (\n\tf "fmt"\n\t"example.com/app/store"\n)\n\n'
                 'type Store struct {\n\tItems []string\n}\n\nfunc (s *Store) Add(x string) {\n\ts.Items = append(s.Items, x)\n}\n',
                 "go")
    assert [i.module for i in go.imports] == ["fmt", "example.com/app/store"]
    assert ("Store", "type", None) in defs(go) and ("Add", "method", None) in defs(go)

    rust = extract("mod config;\nmod inline { fn x() {} }\nuse crate::net::{client::Client, Server as S, self};\n"
                   "use super::util::*;\npub struct Point { x: i32 }\nimpl Point {\n    pub fn new() -> Self {\n"
                   "        Point { x: 0 }\n    }\n}\n", "rust")
    assert [(i.module, i.name, i.alias, i.kind) for i in rust.imports] == [
        ("config", None, None, "mod"),
        ("crate::net::client::Client", "Client", None, "use"),
        ("crate::net::Server", "Server", "S", "use"),
        ("crate::net", "net", None, "use"),
        ("super::util::*", None, None, "wildcard"),
    ]
    assert ("new", "function", "Point") in defs(rust)

    java = extract("package com.acme.app;\n\nimport com.acme.util.Strings;\nimport com.acme.model.*;\n"
                   "import static com.acme.util.Math.max;\n\npublic class Main {\n  private int count;\n"
                   "  public Main(int c) { count = c; }\n  int run() {\n    return Strings.len(\"x\");\n  }\n}\n", "java")
    assert java.package == "com.acme.app"
    assert [(i.module, i.kind) for i in java.imports] == [
        ("com.acme.util.Strings", "module"), ("com.acme.model", "wildcard"), ("com.acme.util.Math.max", "module")]
    assert {("count", "field", "Main"), ("Main", "method", "Main"), ("run", "method", "Main")} <= set(defs(java))

    c = extract('#include <stdio.h>\n#include "util/strbuf.h"\n#define MAX 10\ntypedef struct buf {\n  int n;\n} buf_t;\n'
                "static int *make(int n) {\n  return 0;\n}\nint size(buf_t *b);\n", "c")
    assert [(i.module, i.kind) for i in c.imports] == [("stdio.h", "system"), ("util/strbuf.h", "module")]
    assert {"MAX", "buf_t", "make", "size"} <= {d.name for d in c.definitions}

    cpp = extract('#include "shape.hpp"\nnamespace geo {\nclass Circle : public Shape {\n public:\n'
                  "  double area() const;\n  double r;\n};\n}\ndouble geo::Circle::area() const { return 3.14 * r * r; }\n",
                  "cpp")
    assert [i.module for i in cpp.imports] == ["shape.hpp"]
    assert {("Circle", "class", None), ("area", "method", "Circle"), ("r", "field", "Circle"),
            ("area", "function", None)} <= set(defs(cpp))


def test_broken_code_still_yields_what_parses():
    facts = extract("from .a import b\nclass C:\n    def m(self): pass\n\ndef f(x, y:\n    return b(", "python")
    assert [i.name for i in facts.imports] == ["b"]
    assert "C" in {d.name for d in facts.definitions}
