"""The bracket/quote lexer behind post-processing's balance step."""

from codegemma_lsp.balance import Balance, duplicate_closer, excess_opener, first_closer
from codegemma_lsp.syntax import lexical

PY, C = lexical("python"), lexical("c")


def test_strings_and_comments_hide_brackets():
    b = Balance(PY).run('x = f("(", \'[\')  # ) ]\ny = """\n)\n"""\n')
    assert b.unmatched == 0 and not b.quote
    b = Balance(C).run('int a = f("(" /* ) */, 1); // }\nchar c = \'{\';\n')
    assert b.unmatched == 0


def test_cursor_inside_a_string_is_known_from_the_prefix():
    b = Balance(PY).run('name = config["')
    assert b.quote == '"' and [o for o, _ in b.stack] == ["["]
    assert first_closer('"]\n', b) == '"'
    assert first_closer(")\nprint(x)\n", Balance(PY).run("print(len(")) == ")"
    assert first_closer("\nreturn x\n", Balance(PY).run("x = 1\n")) == ""


def test_duplicate_closer_only_when_it_is_the_one_the_document_already_has():
    start = Balance(PY).run("print(len(")
    assert duplicate_closer("items))", start, ")") == (5, 6)
    assert duplicate_closer("a[0])", start, ")") == (4, 5)  # the [ ] pair belongs to the completion
    assert duplicate_closer("items]", start, ")") is None  # not what the document closes first
    assert duplicate_closer("items", start, ")") is None


def test_excess_openers_are_located():
    start = Balance(PY).run("x = ")
    before = start.copy().run("\n").unmatched
    assert excess_opener(start, "foo(a, [b", "\n", before) == 3
    assert excess_opener(start, "foo(a)", "\n", before) is None
    start = Balance(PY).run("x = foo(")
    before = start.copy().run(")\n").unmatched
    assert excess_opener(start, "a, b", ")\n", before) is None
    assert excess_opener(start, "a, 'b", ")\n", before) == 3  # an unterminated string
