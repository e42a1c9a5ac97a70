"""Indentation helpers: the document's style and unit, and re-indenting a completion to fit its block."""

from codegemma_lsp.indent import match_style, repair, style, unit


def test_style_and_unit():
    assert style("def f():\n\treturn 1\n") == "\t" and style("def f():\n    return 1\n") == " "
    assert unit("if a:\n    b\n") == 4 and unit("if a:\n  b\n    c\n") == 2


def test_match_style_converts_leading_whitespace_only():
    window = "def f():\n\tif a:\n\t\tpass\n"
    assert match_style("    x = '    '\n        y", window, 0) == "\tx = '    '\n\t\ty"
    assert match_style("\tx\n\t\ty", "def f():\n    pass\n", 0) == "    x\n        y"
    assert match_style("x\n\ty", window, 1) == "x\n\ty"  # already the document's style


def test_repair_moves_the_block_together():
    prefix = "def f(xs):\n    for x in xs:\n"
    window = prefix + "        pass\n"
    assert repair("    if x:\n        yield x\n", prefix, "", "python", window) == "        if x:\n            yield x\n"
    assert repair("        if x:\n", prefix, "", "python", window) == "        if x:\n"  # already right
    assert repair("    if x:\n", prefix, "", "javascript", window) == "    if x:\n"  # not indentation-syntax
    # Deeper than the previous (non-opening) line: moved back, unless a line would lose real text.
    prefix = "def f():\n    a = 1\n"
    assert repair("        b = 2\n        c = 3", prefix, "", "python", prefix) == "    b = 2\n    c = 3"
    assert repair("        b = 2\n  c = 3", prefix, "", "python", prefix) == "        b = 2\n  c = 3"
