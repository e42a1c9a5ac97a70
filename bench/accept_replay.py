"""Accept replay: the wait for the next suggestion when the user accepts ghost text and presses Enter, line after
line ("Tab, Enter, Tab, Enter"), through the real server over JSON-RPC, with and without working ahead.

Real files from ../shared/bench/crossfile/repos/ are opened with a block of indented code lines removed, the
cursor on a fresh line indented like the block's first line. Each step does what a user and VS Code do:

1. ask for ghost text (the request right after the previous Enter: the latency measured);
2. read it for --read-s, accept it (the edit) and ask again at its end, as VS Code does after an accept;
3. after --enter-s press Enter: a new line indented like the removed block's next line (the indentation the
   user wants, whatever the editor's auto-indent guessed).

The accepted text is the model's, not the file's, so the document drifts from the original as a user's would.
With --follow-file the user types the file's own line instead: every setting then sees the same documents, and
--out writes each answer after Enter with the line the file has there, to compare settings answer by answer
(`kvShift` is approximate; this is how much it changes).
Reported per setting: latency of the request after Enter (p50/p95, and the share answered without waiting for
the model), latency of the request after the accept, and how many speculations ran.

    .venv/bin/python bench/accept_replay.py --files 8 --lines 6
    .venv/bin/python bench/accept_replay.py --settings '{"speculate": false}'
    .venv/bin/python bench/accept_replay.py --follow-file --settings '{"kvShift": false}' --out exact.json
    .venv/bin/python bench/accept_replay.py --follow-file --any-lines --files 6 --lines 40   # prefix window moves
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from lsprotocol import types  # noqa: E402

from lsp import server_command, session, status  # noqa: E402
from typing_replay import REPOS, pct, position  # noqa: E402


def pick_blocks(count: int, lines: int, seed: int, any_lines: bool = False) -> list[tuple[Path, list[str], int]]:
    """(file, its lines, first line of the block): `lines` consecutive indented non-blank code lines, or with
    `any_lines` any lines after an indented code line 150 lines or more into the file (blank and dedented ones
    too: long stretches of typing, with a full prefix window that has to move)."""
    rng = random.Random(seed)
    files = sorted(p for p in REPOS.rglob("*.py") if 2_000 < p.stat().st_size < 60_000)
    blocks = []
    for path in rng.sample(files, len(files)):
        text = path.read_text(encoding="utf-8").split("\n")
        starts = [i for i in range(150 if any_lines else 20, len(text) - lines) if all(
            line.startswith(" ") and line.strip() and not line.strip().startswith(("#", '"', "'"))
            for line in text[i : i + (1 if any_lines else lines)])]
        if starts:
            blocks.append((path, text, rng.choice(starts)))
        if len(blocks) == count:
            break
    return blocks


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


@dataclass
class Figures:
    """What one setting's run measured."""

    after_enter: list[float] = field(default_factory=list)  # ms, the request after each Enter
    ahead: list[bool] = field(default_factory=list)  # ... answered from work ahead (cache or a speculation)
    evaluated: list[int] = field(default_factory=list)  # prompt tokens evaluated by those the model answered
    moved: list[int] = field(default_factory=list)  # ... and kept from the cache at other positions (kvShift)
    answers: list[dict] = field(default_factory=list)  # after each Enter: the answer and the file's line there
    after_accept: list[float] = field(default_factory=list)  # ms, the request right after each accept
    empty: int = 0


async def replay(client, path: Path, lines: list[str], first: int, count: int, read_s: float, enter_s: float,
                 version: int, figures: Figures, follow_file: bool = False) -> None:
    uri = path.as_uri()
    text = "\n".join(lines[:first] + [indent_of(lines[first])] + lines[first + count:])
    offset = sum(len(line) + 1 for line in lines[:first]) + len(indent_of(lines[first]))
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))

    def change(at: int, insert: str, replace: int = 0) -> None:
        nonlocal text, version
        start, end = position(text, at), position(text, at + replace)
        text = text[:at] + insert + text[at + replace:]
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=start, end=end),
                                                                    text=insert)]))

    async def ask() -> tuple[types.InlineCompletionItem | None, float]:
        started = time.perf_counter()
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position(text, offset),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        return (result.items[0] if result.items else None), (time.perf_counter() - started) * 1000

    item, _ = await ask()  # the cursor lands on the first line: not counted (nothing was worked on ahead yet)
    for step in range(count):
        await asyncio.sleep(read_s)
        if follow_file:  # the user types the file's line, whatever was suggested
            typed = lines[first + step][len(indent_of(lines[first + step])):]
            change(offset, typed)
            offset += len(typed)
        elif item is not None:
            change(offset, item.insert_text, item.range.end.character - item.range.start.character)  # one line
            offset += len(item.insert_text)
            _, ms = await ask()
            figures.after_accept.append(ms)
        await asyncio.sleep(enter_s)
        if step == count - 1:
            break
        indent = indent_of(lines[first + step + 1])
        change(offset, "\n" + indent)
        offset += 1 + len(indent)
        before = await status(client)
        item, ms = await ask()
        after = await status(client)
        ahead = any(after.get(k, 0) > before.get(k, 0) for k in ("typedAheadHits", "joinedAhead"))
        figures.after_enter.append(ms)
        figures.ahead.append(ahead)
        if not ahead:
            figures.evaluated.append(after.get("last", {}).get("evaluatedTokens", 0))
            figures.moved.append(after.get("last", {}).get("movedTokens", 0))
        answer = item.insert_text if item is not None else ""
        figures.answers.append({"file": str(path), "line": first + step + 1, "answer": answer, "ms": round(ms),
                                "expected": lines[first + step + 1][len(indent):]})
        figures.empty += item is None
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-q4")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--lines", type=int, default=6, help="lines accepted per file")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--read-s", type=float, default=1.0, help="time the user reads a suggestion before Tab")
    parser.add_argument("--enter-s", type=float, default=0.3, help="time from Tab to Enter")
    parser.add_argument("--settings", default="{}", help="initializationOptions as JSON")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--follow-file", action="store_true", help="type the file's own lines, not the suggestions")
    parser.add_argument("--any-lines", action="store_true",
                        help="blocks of any lines, blank and dedented too (with --follow-file: long typing)")
    parser.add_argument("--out", type=Path, help="write the answers after each Enter here (JSON)")
    parser.add_argument("--against", type=Path, help="an --out file of another setting: count the answers that differ")
    args = parser.parse_args()

    blocks = pick_blocks(args.files, args.lines, args.seed, args.any_lines)
    f = Figures()
    command = server_command("--model", args.model, "--threads", str(args.threads))
    async with session(command, REPOS, json.loads(args.settings)) as client:
        for n, (path, lines, first) in enumerate(blocks):
            await replay(client, path, lines, first, args.lines, args.read_s, args.enter_s, 1 + 1000 * n, f,
                         args.follow_file)
        final = await status(client)
    model = [ms for ms, ahead in zip(f.after_enter, f.ahead) if not ahead]
    print(f"model {args.model}, {args.threads} threads, settings {args.settings}; {len(blocks)} files, "
          f"{args.lines} lines each; read {args.read_s} s, Enter {args.enter_s} s after Tab")
    print(f"after Enter: {len(f.after_enter)} requests, p50 {pct(f.after_enter, .5):.0f} ms, p95 "
          f"{pct(f.after_enter, .95):.0f} ms, mean {sum(f.after_enter) / max(len(f.after_enter), 1):.0f} ms; "
          f"{sum(f.ahead)} answered from work ahead; {f.empty} empty")
    print(f"  the {len(model)} the model answered then: p50 {pct(model, .5):.0f} ms, p95 {pct(model, .95):.0f} ms; "
          f"prompt tokens evaluated p50 {pct(f.evaluated, .5):.0f}, max {max(f.evaluated, default=0)}, "
          f"total {sum(f.evaluated)}; "
          f"{sum(1 for m in f.moved if m)} kept a moved run ({sum(f.moved)} tokens)")
    if args.follow_file:  # otherwise the document holds the model's lines, not the file's
        right = sum(a["answer"].split("\n")[0].strip() == a["expected"].strip() for a in f.answers)
        print(f"  first line of the answer equal to the file's line: {right} of {len(f.answers)}")
    if f.after_accept:  # none with --follow-file: nothing is accepted
        print(f"after accept: {len(f.after_accept)} requests, p50 {pct(f.after_accept, .5):.0f} ms, p95 "
              f"{pct(f.after_accept, .95):.0f} ms")
    print(f"speculations finished {final.get('workedAhead')}, requests that took one {final.get('joinedAhead')}, "
          f"typed-ahead hits {final.get('typedAheadHits')}")
    if args.against:
        other = {(a["file"], a["line"]): a["answer"] for a in json.loads(args.against.read_text())["answers"]}
        pairs = [(a["answer"], other[a["file"], a["line"]]) for a in f.answers if (a["file"], a["line"]) in other]
        print(f"  same answer as {args.against.name}: {sum(x == y for x, y in pairs)} of {len(pairs)}")
    if args.out:
        args.out.write_text(json.dumps({"settings": json.loads(args.settings), "answers": f.answers}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
