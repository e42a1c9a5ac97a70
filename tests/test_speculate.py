"""Where the user goes after a suggestion (the states worked on ahead): pure functions, no model."""

from codegemma_lsp.completion import Completion, CompletionRequest
from codegemma_lsp.postprocess import Mode
from codegemma_lsp.speculate import accept, enter, next_line, next_states


def cursor(text: str) -> tuple[str, int]:
    return text.replace("|", ""), text.index("|")


def shown(state: tuple[str, int]) -> str:
    """A state written back with its cursor, for readable expectations."""
    return state[0][: state[1]] + "|" + state[0][state[1]:]


def states(before: str, suggestion: str) -> list[str]:
    text, at = cursor(before)
    request = CompletionRequest(uri="file:///p/a.py", path="a.py", text=text, offset=at)
    return [shown(s) for s in next_states(request, Completion(text=suggestion, mode=Mode(multiline=False), stats=None))]


def test_accept_inserts_and_replaces_what_the_suggestion_covers():
    text, at = cursor("print(len(x|))\n")
    assert accept(text, at, "s))", 2) == ("print(len(xs))\n", at + 3)


def test_enter_indents_the_new_line_as_editors_do():
    cases = [
        ("def f(x):\n    y = x + 1|\n", "python", "def f(x):\n    y = x + 1\n    |\n"),
        ("def f(x):\n    if x:|\n", "python", "def f(x):\n    if x:\n        |\n"),
        ("def f(x):\n    return x|\n", "python", "def f(x):\n    return x\n|\n"),
        ("def f(x):\n    returned = x|\n", "python", "def f(x):\n    returned = x\n    |\n"),
        ("func f() {\n\tif ok {|\n}\n", "go", "func f() {\n\tif ok {\n\t\t|\n}\n"),
        ("  a = [|\n", "javascript", "  a = [\n    |\n"),  # two-space files indent by two
        ("x = 1  # a: b\ny = 2|", "python", "x = 1  # a: b\ny = 2\n|"),
        ("def f():\n    x = 1\n    return x|\n", "typescript", "def f():\n    x = 1\n    return x\n    |\n"),
    ]
    for before, language, after in cases:
        assert shown(enter(*cursor(before), language)) == after, before


def test_next_line_of_a_tab_indented_python_block():
    assert next_line(*cursor("class A:\n\tdef f(self):|"), "python") == "\t\t"


def test_a_line_suggested_on_a_fresh_line_is_worked_on_accepted_then_after_enter():
    assert states("def f(x):\n    |\n", "return x") == ["def f(x):\n    return x|\n", "def f(x):\n    return x\n|\n"]


def test_at_the_end_of_a_line_of_code_enter_alone_comes_first():
    assert states("def f(x):\n    y = x + 1|\n", "  # add one") == [
        "def f(x):\n    y = x + 1\n    |\n",
        "def f(x):\n    y = x + 1  # add one|\n",
        "def f(x):\n    y = x + 1  # add one\n    |\n",
    ]
    assert states("def f(x):\n    y = x + 1|\n", "") == ["def f(x):\n    y = x + 1\n    |\n"]


def test_mid_line_only_where_the_suggestion_ends_and_never_the_request_itself():
    assert states("print(len(|))\n", "xs") == ["print(len(xs|))\n"]
    assert states("print(len(|))\n", "") == []
    assert states("def f():\n    |\n", "") == []  # a blank line: Enter there is not guessed
