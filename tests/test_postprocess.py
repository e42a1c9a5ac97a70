"""Post-processing on the shapes users complain about: suffix duplication, run-on blocks, empty results."""

from codegemma_lsp.postprocess import Mode, cut_to_mode, decide_mode, finish, stop_predicate, trim_suffix_overlap


def test_mode_single_line_inside_code():
    assert decide_mode("    total = ", "  # running sum").multiline is False
    assert decide_mode("print(", ")").multiline is True  # only a closer after the cursor: a block may follow
    assert decide_mode("    x = foo", "").multiline is False


def test_mode_block_on_blank_line_or_after_opener():
    m = decide_mode("    ", "", "")
    assert m.multiline and m.indent == "    "
    m = decide_mode("def area(r):", "")
    assert m.multiline and m.indent == ""
    m = decide_mode("", "", "        return x")
    assert m.multiline and m.indent == "        "


def test_single_line_stop_and_cut():
    stop = stop_predicate(Mode(False, ""), "x = ")
    assert not stop("compute(1")
    assert stop("compute(1)\ny = 2")
    assert cut_to_mode("compute(1)\ny = 2\n", Mode(False, ""), "x = ") == "compute(1)"


def test_multiline_stops_when_indentation_leaves_the_block():
    mode = Mode(True, "    ")
    text = "    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\ndef main():\n    pass"
    stop = stop_predicate(mode, "")
    assert not stop("    if n < 2:\n        return n\n")
    assert stop(text)
    assert cut_to_mode(text, mode, "") == "    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)"


def test_trim_closing_bracket_the_document_already_has():
    assert trim_suffix_overlap("len(items))", "n = ", ")", "") == "len(items)"
    assert trim_suffix_overlap("a, b)", "f(", ")", "") == "a, b"
    assert trim_suffix_overlap('"name"]', "d[", '"]', "") == '"name'
    assert trim_suffix_overlap("x + 1", "f(", ")", "") == "x + 1"


def test_trim_lines_that_repeat_the_suffix():
    following = "    return result\n\n\ndef other():\n"
    text = "    result = [x * 2 for x in xs]\n    return result"
    assert trim_suffix_overlap(text, "", "", following) == "    result = [x * 2 for x in xs]"


def test_finish_rejects_whitespace_and_duplicates_only():
    assert finish("   \n  ", Mode(True, ""), "", "", "") == ""
    assert finish("return result", Mode(True, "    "), "    ", "", "    return result\n") == ""
    assert finish("    return result", Mode(True, "    "), "", "", "    return result\n") == ""


def test_finish_single_line_with_crlf_model_output():
    assert finish("a + b\r\nprint(x)", Mode(False, ""), "return ", "", "") == "a + b"
