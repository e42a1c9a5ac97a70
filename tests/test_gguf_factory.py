"""The tiny GGUF written by tests/gguf_factory.py loads and runs in real llama.cpp."""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gguf_factory as gf  # noqa: E402

llama_cpp = pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

N_CTX = 256


def _load(path: Path, **kwargs):
    return llama_cpp.Llama(
        str(path), n_ctx=N_CTX, n_batch=N_CTX, n_threads=1, verbose=False, **kwargs
    )


def _meta(llm, key: str) -> str | None:
    """Read one metadata value through the low-level C API."""
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_model_meta_val_str(llm.model, key.encode(), buf, len(buf))
    if n < 0:
        return None
    return buf.value.decode()


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    return gf.write_tiny_gemma(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def nofim_path(tmp_path_factory) -> Path:
    return gf.write_tiny_gemma(tmp_path_factory.mktemp("gguf") / "nofim.gguf", fim=False)


@pytest.fixture(scope="module")
def llm(tiny_path):
    model = _load(tiny_path)
    yield model
    model.close()


def test_file_is_small_gguf_and_deterministic(tiny_path, tmp_path):
    data = tiny_path.read_bytes()
    assert data[:4] == b"GGUF"
    assert len(data) < 1_000_000
    again = gf.write_tiny_gemma(tmp_path / "again.gguf")
    assert again.read_bytes() == data
    other = gf.write_tiny_gemma(tmp_path / "other.gguf", seed=1)
    assert other.read_bytes() != data
    print(f"\ntiny gguf: {len(data)} bytes, {len(gf.build_vocab()[0])} tokens")


def test_load_time(tiny_path):
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        model = _load(tiny_path)
        times.append(time.perf_counter() - t0)
        model.close()
    print(f"\nload times (s): {', '.join(f'{t:.4f}' for t in times)}")
    assert min(times) < 2.0


def test_metadata(llm):
    assert llm.metadata["general.architecture"] == "gemma"
    assert _meta(llm, "general.architecture") == "gemma"
    assert _meta(llm, "tokenizer.ggml.model") == "llama"
    assert _meta(llm, "tokenizer.ggml.add_bos_token") == "true"
    assert _meta(llm, "tokenizer.ggml.add_space_prefix") == "false"
    assert _meta(llm, "gemma.context_length") == str(gf.CONTEXT_LENGTH)
    assert _meta(llm, "no.such.key") is None
    assert llm._model.n_ctx_train() == gf.CONTEXT_LENGTH
    assert llm.n_embd() == gf.EMBEDDING_LENGTH


def test_vocab(llm):
    tokens, _, _ = gf.build_vocab()
    assert llm.n_vocab() == len(tokens)
    assert llm.token_bos() == gf.BOS_ID
    assert llm.token_eos() == gf.EOS_ID
    assert llm._model.add_bos_token() is True
    assert llm._model.token_eot() == gf.END_OF_TURN_ID
    vocab = llm._model.vocab
    assert llama_cpp.llama_vocab_is_eog(vocab, gf.EOS_ID)
    assert llama_cpp.llama_vocab_is_eog(vocab, gf.END_OF_TURN_ID)
    assert not llama_cpp.llama_vocab_is_eog(vocab, gf.FIM_MIDDLE_ID)
    assert llama_cpp.llama_vocab_is_control(vocab, gf.FIM_PREFIX_ID)
    for i in (0, 1, 2, gf.FIM_PREFIX_ID, gf.FILE_SEPARATOR_ID, gf.FIRST_BYTE_ID, len(tokens) - 1):
        assert llm._model.token_get_text(i) == tokens[i]
        assert llama_cpp.llama_vocab_get_text(vocab, i) == tokens[i].encode()
    assert llm._model.token_get_text(gf.FIM_PREFIX_ID) == "<|fim_prefix|>"
    assert llm._model.token_get_text(gf.FIRST_BYTE_ID + 0x0A) == "<0x0A>"


def test_fim_ids_from_vocab(llm):
    m = llm._model
    assert (m.token_prefix(), m.token_suffix(), m.token_middle()) == (
        gf.FIM_PREFIX_ID,
        gf.FIM_SUFFIX_ID,
        gf.FIM_MIDDLE_ID,
    )
    assert llama_cpp.llama_vocab_fim_pre(m.vocab) == 67
    assert llama_cpp.llama_vocab_fim_suf(m.vocab) == 69
    assert llama_cpp.llama_vocab_fim_mid(m.vocab) == 68


def test_no_fim_variant(nofim_path):
    model = _load(nofim_path)
    try:
        m = model._model
        assert (m.token_prefix(), m.token_suffix(), m.token_middle()) == (-1, -1, -1)
        assert m.token_get_text(gf.FIM_PREFIX_ID) == f"<unused{gf.FIM_PREFIX_ID}>"
        assert model.n_vocab() == len(gf.build_vocab()[0])
        ids = model.tokenize(b"<|fim_prefix|>x", special=True)
        assert gf.FIM_PREFIX_ID not in ids
    finally:
        model.close()


def test_tokenize_special(llm):
    text = b"<|fim_prefix|>def hello(self):\n    return None<|fim_suffix|>"
    plain = llm.tokenize(text, add_bos=False, special=False)
    assert gf.FIM_PREFIX_ID not in plain and gf.FIM_SUFFIX_ID not in plain
    assert llm.detokenize(plain) == text
    special = llm.tokenize(text, add_bos=False, special=True)
    assert special[0] == gf.FIM_PREFIX_ID
    assert special[-1] == gf.FIM_SUFFIX_ID
    assert llm.tokenize(b"def", add_bos=True)[0] == gf.BOS_ID
    # control tokens are rendered only with special=True
    assert llm.detokenize([gf.FIM_MIDDLE_ID]) == b""
    assert llm.detokenize([gf.FIM_MIDDLE_ID], special=True) == b"<|fim_middle|>"
    # words are real multi-character pieces; add_space_prefix is off
    assert llm.tokenize(b"def", add_bos=False) == [gf.FIRST_BYTE_ID + 256 + gf.NORMAL_PIECES.index("def")]


def _fim_prompt(llm) -> list[int]:
    return (
        [gf.BOS_ID, gf.FIM_PREFIX_ID]
        + llm.tokenize(b"def hello(self):\n    ", add_bos=False)
        + [gf.FIM_SUFFIX_ID]
        + llm.tokenize(b"\n    return None\n", add_bos=False)
        + [gf.FIM_MIDDLE_ID]
    )


def _greedy(model, prompt: list[int], n: int = 5) -> list[int]:
    out = []
    for tok in model.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
        out.append(tok)
        if len(out) == n:
            break
    return out


def test_generation_is_deterministic(tiny_path):
    results = []
    for _ in range(2):
        model = _load(tiny_path)
        try:
            prompt = _fim_prompt(model)
            t0 = time.perf_counter()
            toks = _greedy(model, prompt)
            dt = time.perf_counter() - t0
            results.append(toks)
            text = model.detokenize(toks)
        finally:
            model.close()
    print(
        f"\ngreedy 5 tokens after {len(prompt)}-token prompt: {results[0]} = {text!r}"
        f" in {dt * 1000:.1f} ms"
    )
    assert text
    assert len(results[0]) == 5
    first_normal = gf.FIRST_BYTE_ID + 256
    # control/byte tokens have small embeddings: greedy output is plain text
    assert all(first_normal <= t < len(gf.build_vocab()[0]) for t in results[0])
    assert results[0] == results[1]


def _last_logits(model) -> list[float]:
    ptr = llama_cpp.llama_get_logits_ith(model.ctx, -1)
    return ptr[: model.n_vocab()]


def test_kv_cache_truncate_and_reuse(llm):
    prompt = _fim_prompt(llm)
    llm.reset()
    llm.eval(prompt)
    full = _last_logits(llm)
    mem = llama_cpp.llama_get_memory(llm.ctx)
    assert llama_cpp.llama_memory_seq_pos_max(mem, 0) == len(prompt) - 1

    # drop everything from position 4 on, then re-evaluate only the tail
    keep = 4
    assert llama_cpp.llama_memory_seq_rm(mem, 0, keep, -1)
    assert llama_cpp.llama_memory_seq_pos_max(mem, 0) == keep - 1
    llm.n_tokens = keep
    llm.eval(prompt[keep:])
    again = _last_logits(llm)
    assert again == pytest.approx(full, abs=1e-4)

    # the wrapper method does the same (seq_id -1 is mapped to 0)
    assert llm._ctx.kv_cache_seq_rm(-1, keep, -1)
    assert llama_cpp.llama_memory_seq_pos_max(mem, 0) == keep - 1
    llm._ctx.kv_cache_clear()
    assert llama_cpp.llama_memory_seq_pos_max(mem, 0) == -1
    llm.reset()


def test_system_info():
    assert isinstance(llama_cpp.llama_supports_gpu_offload(), bool)
    info = llama_cpp.llama_print_system_info()
    assert isinstance(info, bytes) and info
    print(f"\ngpu offload: {llama_cpp.llama_supports_gpu_offload()}; {info.decode().strip()}")


def test_not_gguf_is_refused(tmp_path):
    bad = gf.write_not_gguf(tmp_path / "bad.gguf")
    assert bad.read_bytes()[:4] != b"GGUF"
    with pytest.raises(ValueError):
        _load(bad)


def test_truncated_is_refused(tiny_path, tmp_path):
    cut = gf.write_truncated(tiny_path, tmp_path / "cut.gguf")
    data = cut.read_bytes()
    assert data[:4] == b"GGUF"
    assert len(data) == tiny_path.stat().st_size // 2
    with pytest.raises(ValueError):
        _load(cut)
    header_only = gf.write_truncated(tiny_path, tmp_path / "hdr.gguf", keep=16)
    with pytest.raises(ValueError):
        _load(header_only)
