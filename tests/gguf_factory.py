"""Tiny but real GGUF model files for tests.

``write_tiny_gemma`` writes a 1-layer ``gemma``-architecture model with a small
SentencePiece (``llama``-type) vocabulary whose control tokens sit at the same
ids as in CodeGemma (``<|fim_prefix|>`` 67, ``<|fim_middle|>`` 68,
``<|fim_suffix|>`` 69, ``<|file_separator|>`` 70, ``<end_of_turn>`` 107, ...).
llama.cpp loads it in milliseconds and runs real inference on it, so tests can
exercise the whole engine without a multi-gigabyte checkpoint. The weights are
seeded random F32 values: the model's output is deterministic but meaningless.

llama.cpp finds the FIM tokens by their text in the vocabulary (it has a list
of well-known spellings such as ``<|fim_prefix|>``), exactly as it does for a
real CodeGemma GGUF. ``fim=False`` writes the same model with those four
tokens renamed to ordinary ``<unusedN>`` control tokens, so llama.cpp reports
no FIM tokens (``llama_vocab_fim_pre`` etc. return -1).

Only ``numpy`` and the ``gguf`` package (the writer that ships with llama.cpp)
are needed; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "PAD_ID",
    "EOS_ID",
    "BOS_ID",
    "UNK_ID",
    "MASK_ID",
    "FIM_PREFIX_ID",
    "FIM_MIDDLE_ID",
    "FIM_SUFFIX_ID",
    "FILE_SEPARATOR_ID",
    "START_OF_TURN_ID",
    "END_OF_TURN_ID",
    "FIM_PREFIX",
    "FIM_MIDDLE",
    "FIM_SUFFIX",
    "FILE_SEPARATOR",
    "FIRST_BYTE_ID",
    "N_CONTROL",
    "ARCH",
    "CONTEXT_LENGTH",
    "EMBEDDING_LENGTH",
    "BLOCK_COUNT",
    "FEED_FORWARD_LENGTH",
    "HEAD_COUNT",
    "HEAD_COUNT_KV",
    "HEAD_DIM",
    "NORMAL_PIECES",
    "build_vocab",
    "write_tiny_gemma",
    "write_not_gguf",
    "write_truncated",
]

# --- control token ids (the same as in CodeGemma's vocabulary) -------------
PAD_ID = 0
EOS_ID = 1
BOS_ID = 2
UNK_ID = 3
MASK_ID = 4
FIM_PREFIX_ID = 67
FIM_MIDDLE_ID = 68
FIM_SUFFIX_ID = 69
FILE_SEPARATOR_ID = 70
START_OF_TURN_ID = 106
END_OF_TURN_ID = 107

FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
FILE_SEPARATOR = "<|file_separator|>"

#: ids 0..N_CONTROL-1 are control tokens; the 256 byte tokens follow.
N_CONTROL = 108
#: id of ``<0x00>``; ``<0xNN>`` has id ``FIRST_BYTE_ID + 0xNN``.
FIRST_BYTE_ID = N_CONTROL

# --- model hyper-parameters -------------------------------------------------
ARCH = "gemma"
CONTEXT_LENGTH = 4096
EMBEDDING_LENGTH = 64
BLOCK_COUNT = 1
FEED_FORWARD_LENGTH = 128
HEAD_COUNT = 4
HEAD_COUNT_KV = 1  # multi-query attention, as in gemma-2b / codegemma-2b
HEAD_DIM = EMBEDDING_LENGTH // HEAD_COUNT
RMS_EPS = 1e-6
ROPE_FREQ_BASE = 10000.0

_SPACE = "\u2581"  # "▁", SentencePiece's whitespace marker

# A few whole words (with and without the leading "▁") so that common code
# tokenizes into multi-character pieces. Every prefix of each piece is in the
# vocabulary too, which SentencePiece's bigram merging needs to reach it.
_WORDS = (
    "def",
    "return",
    "self",
    "import",
    "from",
    "class",
    "print",
    "hello",
    "world",
    "if",
    "else",
    "for",
    "in",
    "not",
    "None",
    "True",
    "False",
    "fim",
    "prefix",
    "suffix",
    "middle",
)


def _normal_pieces() -> list[str]:
    pieces: list[str] = [_SPACE, _SPACE * 2, _SPACE * 4, "\n", "\t"]
    # every printable ASCII character except the space (which is "▁")
    pieces += [chr(c) for c in range(0x21, 0x7F)]
    seen = set(pieces)
    for word in _WORDS:
        for full in (word, _SPACE + word):
            for end in range(2, len(full) + 1):
                piece = full[:end]
                if piece not in seen:
                    seen.add(piece)
                    pieces.append(piece)
    return pieces


#: the NORMAL pieces, in id order, starting right after the byte tokens.
NORMAL_PIECES: tuple[str, ...] = tuple(_normal_pieces())


def _control_name(token_id: int, fim: bool) -> str:
    named = {
        PAD_ID: "<pad>",
        EOS_ID: "<eos>",
        BOS_ID: "<bos>",
        UNK_ID: "<unk>",
        MASK_ID: "<mask>",
        START_OF_TURN_ID: "<start_of_turn>",
        END_OF_TURN_ID: "<end_of_turn>",
    }
    if fim:
        named.update(
            {
                FIM_PREFIX_ID: FIM_PREFIX,
                FIM_MIDDLE_ID: FIM_MIDDLE,
                FIM_SUFFIX_ID: FIM_SUFFIX,
                FILE_SEPARATOR_ID: FILE_SEPARATOR,
            }
        )
    # Fillers are named after their id, so they are unique, and contain the
    # word "unused", which llama.cpp marks as an unused control token.
    return named.get(token_id, f"<unused{token_id}>")


def build_vocab(*, fim: bool = True) -> tuple[list[str], list[float], list[int]]:
    """The (tokens, scores, token_types) lists written by ``write_tiny_gemma``."""
    from gguf import TokenType

    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []

    for i in range(N_CONTROL):
        tokens.append(_control_name(i, fim))
        scores.append(0.0)
        types.append(int(TokenType.UNKNOWN if i == UNK_ID else TokenType.CONTROL))

    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(int(TokenType.BYTE))

    # SentencePiece merges the highest-scoring bigram first; longer pieces get
    # higher scores so words are assembled greedily.
    for i, piece in enumerate(NORMAL_PIECES):
        tokens.append(piece)
        scores.append(float(len(piece)) - 1e-3 * i)
        types.append(int(TokenType.NORMAL))

    assert len(set(tokens)) == len(tokens), "duplicate token text"
    return tokens, scores, types


def write_tiny_gemma(path: Path, *, fim: bool = True, seed: int = 0) -> Path:
    """Write a tiny 1-layer gemma GGUF to ``path`` and return ``path``.

    ``fim=False`` gives the same model without FIM tokens. ``seed`` seeds the
    random weights; the same arguments always give a byte-identical file.
    """
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    tokens, scores, types = build_vocab(fim=fim)
    n_vocab = len(tokens)
    n_embd = EMBEDDING_LENGTH
    n_ff = FEED_FORWARD_LENGTH
    n_q = HEAD_COUNT * HEAD_DIM
    n_kv = HEAD_COUNT_KV * HEAD_DIM

    writer = gguf.GGUFWriter(str(path), ARCH)
    try:
        writer.add_name("tiny-codegemma-test" if fim else "tiny-gemma-nofim-test")
        writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
        writer.add_context_length(CONTEXT_LENGTH)
        writer.add_embedding_length(n_embd)
        writer.add_block_count(BLOCK_COUNT)
        writer.add_feed_forward_length(n_ff)
        writer.add_head_count(HEAD_COUNT)
        writer.add_head_count_kv(HEAD_COUNT_KV)
        writer.add_key_length(HEAD_DIM)
        writer.add_value_length(HEAD_DIM)
        writer.add_layer_norm_rms_eps(RMS_EPS)
        writer.add_rope_freq_base(ROPE_FREQ_BASE)

        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_bos_token_id(BOS_ID)
        writer.add_eos_token_id(EOS_ID)
        writer.add_unk_token_id(UNK_ID)
        writer.add_pad_token_id(PAD_ID)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        if hasattr(writer, "add_add_space_prefix"):
            writer.add_add_space_prefix(False)

        rng = np.random.default_rng(seed)

        def rand(*shape: int, scale: float) -> np.ndarray:
            return (rng.standard_normal(shape) * scale).astype(np.float32)

        def ones(n: int) -> np.ndarray:
            return np.ones(n, dtype=np.float32)

        # numpy shapes are the reverse of ggml's ne order:
        # ggml {n_embd, n_vocab} == numpy (n_vocab, n_embd).
        w_scale = 1.0 / np.sqrt(n_embd)
        # Output logits are hidden_state . token_embd (tied), so a token's
        # logit grows with its embedding norm. Control and byte tokens get
        # small embeddings so greedy decoding emits ordinary text pieces
        # (not <eos>, FIM markers or stray UTF-8 bytes).
        embd = rand(n_vocab, n_embd, scale=0.5)
        embd[:N_CONTROL] *= 0.05
        embd[FIRST_BYTE_ID : FIRST_BYTE_ID + 256] *= 0.2
        tensors: list[tuple[str, np.ndarray]] = [
            ("token_embd.weight", embd),
            ("blk.0.attn_norm.weight", ones(n_embd)),
            ("blk.0.attn_q.weight", rand(n_q, n_embd, scale=w_scale)),
            ("blk.0.attn_k.weight", rand(n_kv, n_embd, scale=w_scale)),
            ("blk.0.attn_v.weight", rand(n_kv, n_embd, scale=w_scale)),
            ("blk.0.attn_output.weight", rand(n_embd, n_q, scale=w_scale)),
            ("blk.0.ffn_norm.weight", ones(n_embd)),
            ("blk.0.ffn_gate.weight", rand(n_ff, n_embd, scale=w_scale)),
            ("blk.0.ffn_up.weight", rand(n_ff, n_embd, scale=w_scale)),
            ("blk.0.ffn_down.weight", rand(n_embd, n_ff, scale=1.0 / np.sqrt(n_ff))),
            # gemma has no output.weight: the output projection is token_embd.
            ("output_norm.weight", ones(n_embd)),
        ]
        for name, data in tensors:
            writer.add_tensor(name, data)

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path


def write_not_gguf(path: Path) -> Path:
    """Write a file that is not a GGUF at all (wrong magic) and return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a GGUF model, just some text\n" * 64)
    return path


def write_truncated(src: Path, dst: Path, *, keep: int | None = None) -> Path:
    """Copy the first ``keep`` bytes of GGUF ``src`` to ``dst`` and return ``dst``.

    By default half the file is kept: the header and metadata are intact
    (the magic is right) but the tensor data runs past the end of the file.
    """
    data = Path(src).read_bytes()
    if keep is None:
        keep = len(data) // 2
    if not 0 <= keep < len(data):
        raise ValueError(f"keep must be in [0, {len(data)}), got {keep}")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[:keep])
    return dst
