"""Token ids for a remote backend: the server's own tokenizer over HTTP, or a local GGUF vocabulary
(engine.GgufVocab), and the neutralization that keeps document text from turning into control tokens.

Exact budgets need the ids the model will see, so the tokenizer must be the served model's. llama-server's
`/tokenize` takes `parse_special: false`, so text is tokenized as text. llama-cpp-python's `/extras/tokenize`
always parses special tokens (and prepends BOS where the model does), and so does every server that takes a
prompt as a string: there, a document that contains `<|fim_middle|>` would hand the model a real control token.
`neutralize` breaks such strings with a zero-width space before they are tokenized or sent; which strings
are control tokens is asked of the vocabulary itself (cached), never guessed from a list.
"""

from __future__ import annotations

import re
from typing import Callable, Protocol, Sequence

from .transport import Transport

# Every control token of the supported families is bracketed: <|fim_prefix|>, <fim_prefix>, <｜fim▁begin｜>,
# <end_of_turn>, </s>, [PREFIX], ▁<PRE>. Candidates of that shape are checked against the vocabulary.
_CANDIDATE = re.compile(r"▁?(?:<[^<>\s]{1,64}>|\[[^\[\]\s]{1,64}\])")
ZWSP = "\u200b"  # zero-width space: invisible in the text, but no control token's spelling contains it


class Vocab(Protocol):
    """A tokenizer for a remote engine; ids must be those of the model the server runs."""

    bos_id: int | None
    end_ids: frozenset[int]
    adds_bos: bool  # the server prepends BOS itself to a text prompt
    parses_special: bool  # tokenize() turns control-token spellings into control tokens

    def tokenize(self, text: str) -> list[int]: ...

    def special_token(self, text: str) -> int | None:
        """The id of the single special (control or user-defined) token spelled `text`, else None."""
        ...

    def control_id(self, text: str) -> int | None:
        """Like special_token, but only for tokens that plain-text tokenization never produces (control)."""
        ...

    def detokenize(self, ids: Sequence[int]) -> str: ...


def neutralize(text: str, is_control: Callable[[str], bool]) -> str:
    """`text` with a zero-width space after the first character of every control-token spelling in it.

    A server that parses special tokens in a text prompt then sees only plain text. The model sees one
    invisible character more than the document holds, in text that was trying to spell a control token.
    """

    def fix(match: re.Match[str]) -> str:
        found = match.group(0)
        for start in (0, 1) if found.startswith("▁") else (0,):
            if is_control(found[start:]):
                return found[: start + 1] + ZWSP + found[start + 1 :]
        return found

    return _CANDIDATE.sub(fix, text) if ("<" in text or "[" in text) else text


class LlamaServerVocab:
    """llama-server's `/tokenize` and `/detokenize`: text tokenized as text (`parse_special: false`)."""

    adds_bos = False  # we send ids, the server adds nothing to them
    parses_special = False

    def __init__(self, transport: Transport, props: dict) -> None:
        self._t = transport
        bos = self.special_token(props.get("bos_token") or "") if props.get("bos_token") else None
        eos = self.special_token(props.get("eos_token") or "") if props.get("eos_token") else None
        self.bos_id = bos
        self.end_ids = frozenset(i for i in (eos,) if i is not None)

    def _tokenize(self, text: str, special: bool) -> list[int]:
        body = {"content": text, "add_special": False, "parse_special": special}
        return [int(i) for i in self._t.request("POST", "/tokenize", body)["tokens"]]

    def tokenize(self, text: str) -> list[int]:
        return self._tokenize(text, False)

    def special_token(self, text: str) -> int | None:
        ids = self._tokenize(text, True)
        return ids[0] if len(ids) == 1 and self._tokenize(text, False) != ids else None

    # Plain tokenization parses user-defined tokens too, so only control tokens differ between the two calls:
    # both questions get the same answer.
    control_id = special_token

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._t.request("POST", "/detokenize", {"tokens": list(ids)})["content"]


class ExtrasVocab:
    """llama-cpp-python's server: `/extras/tokenize` parses special tokens and adds BOS where the model does;
    `/extras/detokenize` renders control tokens as nothing, which is how they are told apart."""

    parses_special = True

    def __init__(self, transport: Transport, model: str | None) -> None:
        self._t, self._model = transport, model
        self._lead = self._raw("")  # [BOS] when the server prepends one, else []
        self.adds_bos = bool(self._lead)
        self.bos_id = self._lead[0] if self._lead else None
        self.end_ids: frozenset[int] = frozenset()  # the server stops on end-of-generation tokens itself

    def _body(self, **fields: object) -> dict[str, object]:
        return {**fields, "model": self._model} if self._model else fields

    def _raw(self, text: str) -> list[int]:
        return [int(i) for i in self._t.request("POST", "/extras/tokenize", self._body(input=text))["tokens"]]

    def tokenize(self, text: str) -> list[int]:
        ids = self._raw(text)
        return ids[len(self._lead) :] if ids[: len(self._lead)] == self._lead else ids

    def special_token(self, text: str) -> int | None:
        ids = self.tokenize(text)
        return ids[0] if len(ids) == 1 and self.detokenize(ids) == "" and text else None

    control_id = special_token

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._t.request("POST", "/extras/detokenize", self._body(tokens=list(ids)))["text"]
