"""Post-processing on the shapes users complain about, each step alone and the whole chain: suffix duplication,
doubled closers, run-on blocks, repeated lines, leaked control tokens, chat fences, mixed indentation, empty
results; and the early stop agreeing with the final cut."""

from __future__ import annotations

import pytest

from codegemma_lsp.config import Config, apply_settings
from codegemma_lsp.postprocess import (
    DEFAULT_STEPS,
    STEPS,
    Edit,
    Mode,
    Surroundings,
    decide_mode,
    detect,
    process,
    stop_predicate,
)

MARKERS = ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endoftext|>", "<|file_sep|>")

# A HumanEval-style function with its body's first line cut out: the cursor is at column 0 of the line that
# follows the hole, so a completion is whole lines inserted above that line.
HOLE_PREFIX = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than threshold. """
'''
HOLE_SUFFIX = '''        for idx2, elem2 in enumerate(numbers):
            if idx != idx2:
                distance = abs(elem - elem2)
                if distance < threshold:
                    return True

    return False
'''


def where(prefix: str, suffix: str = "", language: str = "python") -> Surroundings:
    return Surroundings(prefix=prefix, suffix=suffix, language=language, markers=MARKERS)


def run(prefix: str, suffix: str, raw: str, language: str = "python", steps=DEFAULT_STEPS) -> Edit:
    w = where(prefix, suffix, language)
    return process(raw, w, decide_mode(w), steps)


def generate(raw: str, w: Surroundings, mode: Mode, steps=DEFAULT_STEPS, chunk: int = 3) -> str:
    """What the engine hands to post-processing: the text when the stop predicate first fires, checked after
    every `chunk` characters (a token's worth), or all of it."""
    stop = stop_predicate(w, mode, steps)
    for end in range(chunk, len(raw) + chunk, chunk):
        if stop is not None and stop(raw[:end]):
            return raw[:end]
    return raw


# --- mode ---------------------------------------------------------------------------------------------------


def test_mode_single_line_inside_code_block_elsewhere():
    assert decide_mode(where("    total = ", "  # running sum\n")) == Mode(False)
    assert decide_mode(where("    x = foo", "\n")) == Mode(False)
    assert decide_mode(where("print(", ")\n")).multiline  # only closers after the cursor: a block may follow
    assert decide_mode(where("def area(r):", "\n")) == Mode(True, floor=1)  # the body is deeper than the def
    assert decide_mode(where("class A:\n    def f(self):\n        ", "\n")) == Mode(True, floor=8)


def test_mode_block_at_column_zero_may_dedent_but_not_leave_its_construct():
    assert decide_mode(where(HOLE_PREFIX, HOLE_SUFFIX)) == Mode(True, floor=1)  # before code: lines go above it
    assert decide_mode(where("def f():\n", "\n\nprint(f())\n")) == Mode(True, floor=1)  # after an opener
    assert decide_mode(where("def f():\n    a = 1\n", "")) == Mode(True, floor=1)  # end of file, inside a def
    assert decide_mode(where("import os\n", "\nos.exit(0)\n")) == Mode(True, floor=0)
    # Indented code after the cursor but none before it: the hole opens that code's construct at column 0.
    prefix, suffix = "from rich.cells import CellTable\n\n", '\n    "6.1.0",\n    [(0, 0, 0)],\n)\n'
    assert decide_mode(where(prefix, suffix)) == Mode(True, floor=0)
    assert run(prefix, suffix, 'cell_table = CellTable(\n    "6.1.0",\n').text == "cell_table = CellTable("
    # An `elif` dedents below both neighbours: still inside the function, so it is kept.
    prefix = "def f(c):\n    for x in c:\n        if x:\n            a = 1\n"
    assert run(prefix, "            b = 2\n", "        elif y:\n").text == "        elif y:\n"


# --- suffix duplication ---------------------------------------------------------------------------------------


def test_lines_inserted_above_code_stop_where_the_model_retypes_that_code():
    raw = "    for idx, elem in enumerate(numbers):\n" + HOLE_SUFFIX[:60]
    assert run(HOLE_PREFIX, HOLE_SUFFIX, raw) == Edit("    for idx, elem in enumerate(numbers):\n")


def test_duplicate_detected_on_a_partial_last_line_when_max_tokens_cut_it():
    raw = "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enum"
    assert run(HOLE_PREFIX, HOLE_SUFFIX, raw) == Edit("    for idx, elem in enumerate(numbers):\n")


def test_block_on_a_blank_line_stops_before_the_lines_that_follow():
    prefix = "def mean(xs):\n    total = sum(xs)\n    "
    suffix = "\n    return total / n\n"
    raw = "n = len(xs)\n    return total / n\n"
    assert run(prefix, suffix, raw) == Edit("n = len(xs)")


def test_cursor_after_indentation_keeps_that_indentation_for_the_code_after_it():
    prefix, suffix = "def f(xs):\n    ", "return total\n"
    assert run(prefix, suffix, "total = sum(xs)\n    return total\n") == Edit("total = sum(xs)\n    ")


def test_mid_line_completion_that_retypes_the_rest_of_the_line():
    assert run("    if ", "x > 0:\n        pass\n", "y < 0 and x > 0:") == Edit("y < 0 and ")
    assert run("total = price * ", "  # incl. tax\n", "1.2  # incl. tax") == Edit("1.2")


def test_block_that_retypes_the_rest_of_the_line_and_goes_on_is_a_replace_edit():
    edit = run("def add(", "):\n", "a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    assert edit == Edit("a, b):\n    return a + b", replace=2)
    # Nothing after the re-typed line: the same text as a plain insert.
    assert run("n = len(", ")\nprint(n)\n", "items)\nprint(n)\n") == Edit("items")


# --- brackets and quotes -------------------------------------------------------------------------------------


def test_closer_the_editor_already_inserted_is_not_doubled():
    assert run("print(len(ite", "))\n", "ms))") == Edit("ms")
    assert run('config["', '"]\n', 'timeout"] = 5') == Edit("timeout")
    assert run("values = [", "]\n", "1, 2, 3]\n") == Edit("1, 2, 3")


def test_closer_for_an_opener_of_the_completion_or_one_the_suffix_lacks_is_kept():
    assert run("    result = sum(val", "\n    return result\n", "ues)") == Edit("ues)")
    assert run("x = ", "\n", "f(a)[0]") == Edit("f(a)[0]")


def test_closers_inside_strings_and_comments_do_not_count():
    assert run("print(", ")\n", "')'") == Edit("')'")
    assert run("log(", ")\n", "x)  # see (a)") == Edit("x")


def test_never_more_unmatched_openers_than_before():
    # max_tokens cut the call short: the unclosed call is dropped, the complete line kept
    prefix = "def f(xs):\n"
    assert run(prefix, "", "    ys = sorted(xs)\n    return merge(ys, key=lambda y: (y[0],") == Edit("    ys = sorted(xs)")
    assert run("x = ", "\n", "compute(a, b") == Edit("compute")


# --- repeats, control tokens, fences, indentation, empty --------------------------------------------------------


def test_repeated_lines_and_blocks_are_cut():
    prefix = "def f():\n"
    assert run(prefix, "", "    x = compute(1)\n    x = compute(1)\n    x = compute(1)\n") == Edit("    x = compute(1)")
    raw = "    a = 1\n    b = 2\n    a = 1\n    b = 2\n    a = 1\n"
    assert run(prefix, "", raw) == Edit("    a = 1\n    b = 2")
    assert run("x = 1\n", "", "y = 2\ny = 2\ny = 2\n") == Edit("y = 2")  # a short line three times
    assert run("    results.append(item)\n", "", "    results.append(item)\n") == Edit("")  # the line above again


def test_legitimate_repetition_is_kept():
    c = "int f() {\n  if (a) {\n    if (b) {\n      g();\n"
    assert run(c, "", "    }\n  }\n  return 0;\n}\n", language="c").text == "    }\n  }\n  return 0;\n}"
    assert run("def f():\n", "", "    a = 1\n    b = 1\n").text == "    a = 1\n    b = 1"


def test_leaked_control_tokens_and_chat_fences_are_cut():
    assert run("x = ", "\n", "1<|endoftext|>junk") == Edit("1")
    assert run("def f():\n", "", "    return 1\n<|file_sep|>other.py\nimport os") == Edit("    return 1")
    assert run("def f():\n", "", "    return 1\n```\nThis function returns one.") == Edit("    return 1")
    # The document itself contains the string: it is text, not a leak.
    assert run('STOP = "<|endoftext|>"\nTOKEN = "', '"\n', '<|endoftext|>') == Edit("<|endoftext|>")


def test_indentation_follows_the_document_style():
    prefix = "def f(xs):\n\tfor x in xs:\n"
    assert run(prefix, "", "\t\tprint(x)\n\t\tyield x").text == "\t\tprint(x)\n\t\tyield x"
    assert run(prefix, "", "        print(x)\n        yield x").text == "\t\tprint(x)\n\t\tyield x"
    assert run("def f():\n    a = 1\n", "", "\tb = 2").text == "    b = 2"


def test_empty_and_whitespace_results_mean_no_suggestion():
    assert run("def f():\n    ", "\n", "   \n  \n") == Edit("")
    assert run("x = ", "\n", "") == Edit("")
    assert run(HOLE_PREFIX, HOLE_SUFFIX, "\n\n") == Edit("")


# --- anchor: a block must end where it should ------------------------------------------------------------------

MEAN_PREFIX = 'def mean(xs):\n    """The arithmetic mean."""\n\n'
MEAN_SUFFIX = "    return total / len(xs)\n"


def test_block_that_rewrites_the_code_after_the_cursor_keeps_only_its_first_line():
    # The model fills the hole, then writes its own ending instead of the document's and wanders off.
    raw = "    total = sum(xs)\n    return total / max(len(xs), 1)\n\n\nprint(mean([1, 2]))\n"
    assert run(MEAN_PREFIX, MEAN_SUFFIX, raw) == Edit("    total = sum(xs)\n")
    steps = tuple(s for s in DEFAULT_STEPS if s != "anchor")
    assert run(MEAN_PREFIX, MEAN_SUFFIX, raw, steps=steps).text.count("\n") == 2


def test_block_that_rejoins_the_document_or_ends_itself_is_kept_whole():
    raw = "    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)\n"
    assert run(MEAN_PREFIX, MEAN_SUFFIX, raw) == Edit("    total = 0\n    for x in xs:\n        total += x\n")
    w = where(MEAN_PREFIX, MEAN_SUFFIX)
    raw = "    total = 0\n    for x in xs:\n        total += x\n"  # then an end-of-generation token
    assert process(raw, w, decide_mode(w), DEFAULT_STEPS, finished=True).text == raw
    assert process(raw, w, decide_mode(w), DEFAULT_STEPS, finished=False).text == "    total = 0\n"


def test_unanchored_block_keeps_lines_nested_deeper_than_the_next_line():
    prefix = "def f(s):\n    depth = 0\n    for c in s:\n        if c == '(':\n"
    suffix = "        elif c == ')':\n            depth -= 1\n    return depth\n"
    raw = "            depth += 1\n            seen.append(c)\n\n    return depth\n\n# Test\nprint(f('('))\n"
    assert run(prefix, suffix, raw).text == "            depth += 1\n            seen.append(c)\n"
    assert run(prefix, suffix, raw, steps=tuple(s for s in DEFAULT_STEPS if s != "nested")).text == (
        "            depth += 1\n")


def test_block_at_the_end_of_a_function_may_run_to_its_end():
    raw = "    total = sum(xs)\n    return total / len(xs)\n\n\nprint(mean([1, 2]))\n"
    assert run(MEAN_PREFIX, "", raw) == Edit("    total = sum(xs)\n    return total / len(xs)")


def test_fuzzy_retyping_of_the_next_line_is_an_option():
    prefix = "def f(xs):\n    best = None\n    for x in xs:\n"
    suffix = "        if best is None or x > best:\n            best = x\n    return best\n"
    raw = "        x = abs(x)\n        if best is None or x >= best:\n            best = x\n"
    assert run(prefix, suffix, raw).text == "        x = abs(x)\n"  # no exact match: first line only
    fuzzy = DEFAULT_STEPS + ("fuzzy",)
    assert run(prefix, suffix, raw + "    return max(xs)\n", steps=fuzzy).text == "        x = abs(x)\n"
    assert "fuzzy" not in DEFAULT_STEPS  # it cost a multi-line task on HumanEval


# --- indentation --------------------------------------------------------------------------------------------


def test_line_after_a_block_opener_is_moved_into_the_block():
    prefix = "def f(xs):\n    for x in xs:\n"
    assert run(prefix, "        yield x\n", "    print(x)\n") == Edit("        print(x)\n")
    prefix = "def f(n):\n    if n < 0:\n        # negative\n"  # a comment line between
    assert run(prefix, "\n    return n\n", "    raise ValueError(n)").text == "        raise ValueError(n)"


def test_unexpected_indent_is_moved_back_to_the_previous_line():
    prefix = "def f(xs):\n    total = 0\n"
    assert run(prefix, "    return total\n", "        total = sum(xs)\n") == Edit("    total = sum(xs)\n")
    # A line continuing an open bracket, or any language where indentation is not syntax, is left alone.
    assert run("x = f(a,\n", "", "      b)").text == "      b)"
    assert run("int f() {\n  int a = 1;\n", "}\n", "      return a;", language="c").text == "      return a;"


# --- syntax check -----------------------------------------------------------------------------------------


def test_syntax_check_keeps_the_longest_prefix_without_new_errors():
    prefix = "def f(x):\n"
    raw = "    y = x * 2\n    if y >\n"
    assert run(prefix, "", raw) == Edit("    y = x * 2")
    assert run(prefix, "", raw, steps=tuple(s for s in DEFAULT_STEPS if s != "syntax")).text == raw.rstrip()


def test_syntax_check_is_relative_to_the_document_and_skipped_without_a_grammar():
    broken_before = "def f(x:\n    "  # the document already has an error the completion did not cause
    assert run(broken_before, "\n", "return x").text == "return x"
    assert run("x = ", "\n", "1 +* 2", language="").text == "1 +* 2"


def test_checks_read_the_statements_the_window_cuts_through():
    # The window starts inside a long dict literal and ends before its closing brace: parsed alone, a correct
    # entry looks like an error and an opener whose closer lies past the window looks unclosed.
    entry = '"d": Style(color="green", bold=True),'
    inside = Surroundings('    "b": Style(color="red"),\n    "c": Style(bold=True),\n    ',
                          '\n    "e": Style(underline=True),\n', "python")
    assert process(entry, inside, decide_mode(inside), finished=True).text == ""
    whole = Surroundings(inside.prefix, inside.suffix, "python", head='STYLES = {\n    "a": Style(),\n', tail="}\n")
    assert process(entry, whole, decide_mode(whole), finished=True).text == entry
    call = Surroundings("x = 1\n\n\nPALETTE = ", "\n    [\n        (1, 2),\n", "python")
    assert process("Palette(", call, decide_mode(call), finished=True).text == "Palette"
    closed = Surroundings(call.prefix, call.suffix, "python", tail="    ]\n)\n")
    assert process("Palette(", closed, decide_mode(closed), finished=True).text == "Palette("


# --- the chain -------------------------------------------------------------------------------------------


CASES = [
    (HOLE_PREFIX, HOLE_SUFFIX, "    for idx, elem in enumerate(numbers):\n" + HOLE_SUFFIX),
    (HOLE_PREFIX, HOLE_SUFFIX, "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enum"),
    ("def f(xs):\n    ", "\n    return total\n", "total = 0\n    for x in xs:\n        total += x\n    return total\n"),
    ("x = foo(", ")\n", "a, b)\ny = 2\n"),
    ("def add(", "):\n", "a, b):\n    return a + b\n\n\ndef sub(a, b):\n"),
    ("def f():\n", "", "    x = compute(1)\n    x = compute(1)\n    x = compute(1)\n    x = compute(1)\n"),
    ("def f():\n", "", "    return 1\n<|file_sep|>other.py\nimport os\n"),
    ("    total = ", "\n", "price * qty\n    return total\n"),
    ('name = "', '"\n', 'Ada"\nprint(name)\n'),
    ("def f():\n    if a:\n", "    return b\n", "        c = 1\n    return b\n\n\nprint(f())\n"),
    (MEAN_PREFIX, MEAN_SUFFIX, "    total = sum(xs)\n    return total / max(len(xs), 1)\n\n\nprint(mean([1, 2]))\n"),
]


@pytest.mark.parametrize("prefix, suffix, raw", CASES)
@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_early_stop_agrees_with_the_final_cut(prefix, suffix, raw, chunk):
    """Stopping generation as soon as the predicate fires gives exactly the text the whole raw output gives,
    with every step and with each step left out."""
    w = where(prefix, suffix)
    mode = decide_mode(w)
    for steps in [DEFAULT_STEPS] + [tuple(s for s in DEFAULT_STEPS if s != left) for left in DEFAULT_STEPS]:
        stopped = generate(raw, w, mode, steps, chunk)
        assert process(stopped, w, mode, steps) == process(raw, w, mode, steps), (steps, stopped)
    if not raw.endswith("enum"):  # (the one cut short by max_tokens)
        assert detect(raw, w, mode) is not None  # each case stops early


def test_no_steps_means_the_raw_text_and_no_early_stop():
    w = where("x = ", "\n")
    assert process("1\n\n<|endoftext|>  ", w, decide_mode(w), ()) == Edit("1\n\n<|endoftext|>  ")
    assert stop_predicate(w, decide_mode(w), ()) is None


def test_postprocess_setting():
    assert Config().postprocess == DEFAULT_STEPS
    config, messages = apply_settings(Config(), {"postprocess": False})
    assert config.postprocess == () and not messages
    config, messages = apply_settings(config, {"postprocess": ["syntax", "mode"]})
    assert config.postprocess == ("mode", "syntax") and not messages
    config, messages = apply_settings(config, {"postprocess": ["mode", "telepathy"]})
    assert config.postprocess == ("mode", "syntax") and "telepathy" in messages[0]
    assert apply_settings(Config(), {"postprocess": True})[0].postprocess == DEFAULT_STEPS
    assert set(DEFAULT_STEPS) <= set(STEPS)
