"""More holes like ../shared/bench/crossfile's, cut by this script from the same repositories, so the graph's
effect can be measured on cases no one has tuned for (the shared 200 are the issue's yardstick; a second,
disjoint sample tells how far a figure on them is luck).

A hole is one source line of a repository's package (not its tests) whose text uses a name imported from another
module of the same repository: `line` hides the line after its indentation, `from_name` the rest of the line from
that name on. Lines of the shared cases are left out. The repositories' files are the shared ones; the output
directory gets `cases.jsonl` and a `repos` link, for `bench/crossfile.py --data DIR`.

    .venv/bin/python bench/crossfile_holes.py /tmp/holes --per-repo 40
    .venv/bin/python bench/crossfile.py --data /tmp/holes --cases 200 --modes graph,none --out holes.jsonl
"""

from __future__ import annotations

import argparse
import ast
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench" / "crossfile"
PACKAGES = {"click": "src/click", "flask": "src/flask", "httpx": "httpx", "marshmallow": "src/marshmallow",
            "rich": "rich"}
STATEMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return, ast.Raise, ast.Expr, ast.If, ast.Assert)
FROM_NAME_SHARE = 0.4  # the shared cases: 82 of 200


def module_file(root: Path, package: str, module: str) -> str | None:
    """`click.core` -> `src/click/core.py` (or the package's `__init__.py`), when the repository has it."""
    base = Path(package).parent
    for candidate in (base / (module.replace(".", "/") + ".py"), base / module.replace(".", "/") / "__init__.py"):
        if (root / candidate).is_file():
            return candidate.as_posix()
    return None


def imported(root: Path, package: str, rel: str, tree: ast.Module) -> dict[str, str]:
    """Local name -> the repository file it comes from, for the module's imports from its own repository."""
    here = rel[: -len(".py")].replace("/", ".")
    top = Path(package).name
    here = here[here.index(top):] if top in here.split(".") else here
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")[: -node.level]
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != top:
                continue
            for alias in node.names:
                path = module_file(root, package, f"{module}.{alias.name}") or module_file(root, package, module)
                if path and path != rel:
                    names[alias.asname or alias.name] = path
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == top and alias.asname:
                    path = module_file(root, package, alias.name)
                    if path and path != rel:
                        names[alias.asname] = path
    return names


def holes(root: Path, package: str, rel: str) -> list[dict]:
    text = (root / rel).read_text()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    names = imported(root, package, rel, tree)
    lines = text.split("\n")
    found: dict[int, dict] = {}
    for statement in ast.walk(tree):
        if not isinstance(statement, STATEMENTS):
            continue
        scope = statement.test if isinstance(statement, ast.If) else statement
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Name) and node.id in names) or node.lineno in found:
                continue
            if isinstance(statement, ast.If) and node.lineno != statement.lineno:
                continue
            line = lines[node.lineno - 1]
            if line[node.col_offset:].startswith(node.id) and line.strip():
                found[node.lineno] = {"lineno": node.lineno, "col": node.col_offset, "name": node.id,
                                      "module_path": names[node.id]}
    return list(found.values())


def cut(repo: str, rel: str, text: str, hole: dict, mode: str) -> dict:
    lines = text.split("\n")
    number = hole["lineno"] - 1
    line = lines[number]
    start = hole["col"] if mode == "from_name" else len(line) - len(line.lstrip())
    before = "\n".join(lines[:number] + [line[:start]])
    return {
        "id": f"{repo}/{rel}:{hole['lineno']}:{mode}", "repo": repo, "path": rel, "lineno": hole["lineno"],
        "mask_mode": mode, "language": "python", "prefix": before, "middle": line[start:],
        "suffix": "\n" + "\n".join(lines[number + 1:]), "imported_names": [hole["name"]],
        "imported_module_paths": [hole["module_path"]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-repo", type=int, default=40)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    shared = {(c["repo"], c["path"], c["lineno"]) for c in map(json.loads, open(SHARED / "cases.jsonl"))}
    rng = random.Random(args.seed)
    cases = []
    for repo, package in sorted(PACKAGES.items()):
        root = SHARED / "repos" / repo
        pool = []
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            pool += [(rel, hole) for hole in holes(root, package, rel)
                     if (repo, rel, hole["lineno"]) not in shared]
        for rel, hole in rng.sample(pool, min(args.per_repo, len(pool))):
            mode = "from_name" if rng.random() < FROM_NAME_SHARE else "line"
            case = cut(repo, rel, (root / rel).read_text(), hole, mode)
            assert case["prefix"] + case["middle"] + case["suffix"] == (root / rel).read_text()
            cases.append(case)
        print(f"{repo}: {len(pool)} candidate lines, {min(args.per_repo, len(pool))} taken")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "cases.jsonl", "w") as sink:
        for case in cases:
            sink.write(json.dumps(case) + "\n")
    link = args.out / "repos"
    if not link.exists():
        link.symlink_to(SHARED / "repos")
    print(f"{len(cases)} cases in {args.out / 'cases.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
