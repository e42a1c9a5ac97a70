"""A scripted engine for protocol-logic tests only (cancellation, queueing, result shapes).

It never stands in for llama.cpp where a test claims inference: those tests use a real GGUF.
Run as a module to serve LSP with it: `python -m tests.fake_engine [completion text] [seconds per token]`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

from codegemma_lsp.config import Config
from codegemma_lsp.engine import Generation, GenerationRequest, GenerationStats, ModelInfo

CONTROLS = {"<|fim_prefix|>": 67, "<|fim_middle|>": 68, "<|fim_suffix|>": 69, "<|file_separator|>": 70}


class FakeEngine:
    """Byte-level tokenizer; 'generates' a fixed text one character per step, honouring cancellation."""

    bos_id = 2
    end_ids = frozenset({1})
    heals = False

    def __init__(self, path: Path, config: Config, text: str = "value + 1", step_s: float = 0.0) -> None:
        self.text, self.step_s = text, step_s
        self.info = ModelInfo(path=str(path), architecture="fake", name="fake", file_type="", size_bytes=0,
                              n_params=0, n_ctx=config.ctx_size, n_gpu_layers=0, gpu_offload_supported=False,
                              vocab_size=256 + 200)

    def tokenize(self, text: str) -> list[int]:
        return [200 + b for b in text.encode()]

    def special_token(self, text: str) -> int | None:
        return CONTROLS.get(text)

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        out, reason = "", "max_tokens"
        for ch in self.text[: request.max_tokens]:
            if cancelled():
                reason = "cancelled"
                break
            time.sleep(self.step_s)
            out += ch
        stats = GenerationStats(len(request.prompt), 0, len(request.prompt), len(out), 0.0, 0.0, reason)
        return Generation(text=out, ids=tuple(out.encode()), stats=stats)


def main() -> None:
    from codegemma_lsp.server import build_server

    text = sys.argv[1] if len(sys.argv) > 1 else "value + 1"
    step = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    server = build_server(Config(model=__file__), lambda path, config: FakeEngine(path, config, text, step))
    server.start_io()


if __name__ == "__main__":
    main()
