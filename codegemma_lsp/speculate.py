"""Working ahead: while the user reads a suggestion, complete the document states the user most likely asks
about next, so that request is answered without waiting for the model.

Where the user goes next (pure functions): the suggestion accepted, where editors ask again at once, or not;
and when either ends a line of code, Enter after it: the next line, indented as editors' auto-indent does it
(the same level, one deeper after a line that opens a block, `:` in Python or an open bracket, one shallower
after Python's `return`, `pass`, `raise`, `break` or `continue`).

How (`WorkAhead`): the states run one after another on the inference worker, each stopped by any request the
model must answer, and declined by the engine where its prompt would evict the cached prompt of the user's
last request (a new line that changes the context block), so a wrong guess costs only idle CPU time. Answers
go into the typed-ahead cache; a request for a state still being worked on waits for it instead of starting
over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import re
from concurrent.futures import Executor
from typing import Callable

from .completion import Completion, CompletionRequest, CompletionService, Pending
from .indent import INDENT_IS_SYNTAX, indentation, style, unit
from .syntax import language_for
from .typeahead import TypeAheadCache

log = logging.getLogger(__name__)

STYLE_CHARS = 4096  # characters before the cursor that decide tabs or spaces and the indentation unit
_OPENERS = ("{", "(", "[")
_DEDENT_AFTER = re.compile(r"(return|pass|raise|break|continue)\b")


def accept(text: str, offset: int, insert: str, replace: int) -> tuple[str, int]:
    """The text and cursor after accepting `insert` at `offset`, replacing `replace` code points after it."""
    return text[:offset] + insert + text[offset + replace:], offset + len(insert)


def next_line(text: str, offset: int, language: str) -> str:
    """The indentation an editor gives the new line when Enter is pressed at the end of the cursor's line."""
    line = text[text.rfind("\n", 0, offset) + 1 : offset]
    indent = line[: indentation(line)]
    window = text[max(0, offset - STYLE_CHARS) : offset]
    step = "\t" if style(window) == "\t" else " " * unit(window)
    code = line.strip()
    if code.endswith(_OPENERS) or (language in INDENT_IS_SYNTAX and code.endswith(":")):
        return indent + step
    if language in INDENT_IS_SYNTAX and _DEDENT_AFTER.match(code) and indent.endswith(step):
        return indent[: -len(step)]
    return indent


def ends_code_line(text: str, offset: int) -> bool:
    """The cursor is at the end of a line with code on it (where Enter comes next)."""
    line_end = text.find("\n", offset)
    rest = text[offset : len(text) if line_end < 0 else line_end]
    return not rest and bool(text[text.rfind("\n", 0, offset) + 1 : offset].strip())


def enter(text: str, offset: int, language: str) -> tuple[str, int]:
    """The text and cursor after Enter at `offset`, the new line indented as an editor does."""
    indent = next_line(text, offset, language)
    return text[:offset] + "\n" + indent + text[offset:], offset + 1 + len(indent)


def next_states(request: CompletionRequest, shown: Completion) -> list[tuple[str, int]]:
    """The states worth working on after `shown` was offered at `request`, likeliest first; never the request's
    own state. Each choice (the suggestion accepted, or not) gives the state right after it, where editors ask
    at once, and, when that ends a line of code, the next line after Enter. Accepting comes first, except at the
    end of a line of code: what the model adds there (a trailing comment, a call's continuation) is taken less
    often than Enter is pressed without it."""
    language = language_for(request.path)
    here = (request.text, request.offset)
    choices = [(shown.text, shown.replace), ("", 0)]
    if ends_code_line(*here):
        choices.reverse()
    states: list[tuple[str, int]] = []
    for insert, replace in choices:
        after = accept(request.text, request.offset, insert, replace)
        for state in (after, enter(*after, language)) if ends_code_line(*after) else (after,):
            if state != here and state not in states:
                states.append(state)
    return states


def _state(flight: Pending) -> tuple[str, str, int] | None:
    """(uri, text, offset) a flight works on; None once it was stopped."""
    target = flight.request
    return None if target is None else (target.uri, target.text, target.offset)


class WorkAhead:
    """Speculative completions for one server: queued on its inference worker, answers into its typed-ahead
    cache."""

    def __init__(self, worker: Executor, typeahead: TypeAheadCache, is_open: Callable[[str], bool]) -> None:
        self.worker = worker
        self.typeahead = typeahead
        self.is_open = is_open
        self.flights: list[tuple[Pending, asyncio.Future]] = []
        self.ids = itertools.count(1)
        self.finished = 0  # speculations run to the end
        self.joined = 0  # requests answered by a speculation's result (typed-ahead hits not counted)

    def plan(self, service: CompletionService, request: CompletionRequest, shown: Completion) -> None:
        """Work on the states after `shown` instead of the earlier plan, keeping what that plan queued or ran for
        a state still wanted (typing through a suggestion, or the request right after accepting one)."""
        states = [s for s in next_states(request, shown) if not self.typeahead.known(request.uri, *s)]
        wanted = {(request.uri, text, offset) for text, offset in states}
        self._retain(lambda flight: _state(flight) in wanted)
        for text, offset in states:
            if self.on(request.uri, text, offset) is not None:
                continue
            flight = Pending(dataclasses.replace(request, text=text, offset=offset, request_id=next(self.ids)))
            self.flights.append((flight, asyncio.ensure_future(self._run(flight, service))))

    def on(self, uri: str, text: str, offset: int) -> asyncio.Future | None:
        """The speculation for exactly this state, queued, running or finished, unless it was stopped."""
        for flight, task in self.flights:
            if _state(flight) == (uri, text, offset):
                return task
        return None

    def claim(self, uri: str, text: str, offset: int) -> asyncio.Future | None:
        """For a request the model must answer: the speculation for its state, if any, which it then waits for.
        The ones queued before it are stopped, so the request waits for nothing else; those after it go on
        (without one, all are stopped: the request runs after them on the same worker)."""
        task = self.on(uri, text, offset)
        after = [queued for _, queued in self.flights].index(task) if task is not None else len(self.flights)
        later = {flight for flight, _ in self.flights[after:]}
        self._retain(later.__contains__)
        return task

    def forget(self, uri: str) -> None:
        """A closed document's work ahead stops (a running one within a token), and no answer of it is kept."""
        self._retain(lambda flight: flight.request is not None and flight.request.uri != uri)

    def stop(self) -> None:
        self._retain(lambda flight: False)

    def _retain(self, keep: Callable[[Pending], bool]) -> None:
        """Stop every flight `keep` rejects and drop it from the plan."""
        kept = []
        for flight, task in self.flights:
            if keep(flight):
                kept.append((flight, task))
            else:
                flight.set()
        self.flights = kept

    async def _run(self, flight: Pending, service: CompletionService) -> Completion | None:
        def run() -> tuple[CompletionRequest, Completion] | None:
            snapshot = flight.request
            if snapshot is None or flight.is_set():  # a request came first: never start
                return None
            return snapshot, service.complete(snapshot, flight.is_set, ahead=True)

        try:
            done = await asyncio.get_running_loop().run_in_executor(self.worker, run)
        except Exception as exc:  # lost work ahead costs nothing: the real request does it and reports
            log.warning("working ahead failed: %r", exc)
            return None
        if done is None:
            return None
        snapshot, completion = done  # an answer that was finished stays valid whatever came after it
        if completion.stats is not None and completion.stats.stop_reason in ("cancelled", "declined"):
            return None
        self.finished += 1
        if self.is_open(snapshot.uri):
            self.typeahead.remember(snapshot.uri, snapshot.text, snapshot.offset, completion.text, completion.replace)
        return completion
