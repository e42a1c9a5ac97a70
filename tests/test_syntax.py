"""Languages and tree-sitter error counts for the syntax step."""

from codegemma_lsp.syntax import error_count, language_for


def test_language_from_extension():
    assert language_for("src/app.py") == "python"
    assert language_for("web/index.TSX") == "tsx"
    assert language_for("main.go") == "go"
    assert language_for("README") == "" and language_for("notes.txt") == ""


def test_error_counts():
    assert error_count("fn main() {}\n", "rust") == 0 and error_count("x = 1\n", "") is None
    assert error_count("def f(x):\n    return x\n", "python") == 0
    assert error_count("def f(x:\n    return x\n", "python") >= 1
    assert error_count("function f(a) { return a; }\n", "javascript") == 0
    assert error_count("function f(a) { return a; \n", "javascript") >= 1
    assert error_count("fn main() { let x = 1; }\n", "rust") == 0
    assert error_count("anything", "") is None and error_count("anything", "cobol") is None
