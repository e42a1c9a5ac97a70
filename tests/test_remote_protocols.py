"""llama-server and Ollama wire formats, driven through `connect` and `RemoteEngine` against loopback servers
that speak their documented formats (tests/remote_fakes.py: neither server can be installed here), plus the
OpenAI stream parser and the control-token neutralizer as pure functions."""

from __future__ import annotations

import time

import pytest

from codegemma_lsp.backends import OpenAIWire, Sampling
from codegemma_lsp.completion import CompletionRequest, CompletionService
from codegemma_lsp.config import BackendConfig, Config
from codegemma_lsp.engine import GenerationRequest, ModelInfo, PromptParts
from codegemma_lsp.prompt import ContextFile
from codegemma_lsp.errors import BackendError, ConfigError, ModelError
from codegemma_lsp.remote import Backend, RemoteEngine, connect, detect_kind
from codegemma_lsp.remote_vocab import ZWSP, LlamaServerVocab, neutralize
from codegemma_lsp.transport import Transport
from tests.remote_fakes import CONTROLS, FakeLlamaServer, FakeOllama, Script, byte_ids, byte_text, sse


def backend(url: str, **kw) -> Config:
    return Config(backend=BackendConfig(url=url, **kw), max_tokens=16)


@pytest.fixture
def llama_server():
    fake = FakeLlamaServer()
    yield fake
    fake.close()


def test_llama_server_is_detected_and_gets_our_exact_ids_with_cache_prompt(llama_server):
    engine = connect(backend(llama_server.url))
    assert detect_kind(Transport(llama_server.url)) == "llama-server"
    assert (engine.backend.kind, engine.backend.model, engine.info.n_ctx) == ("llama-server", "fake.gguf", 4096)
    assert engine.bos_id == CONTROLS["<bos>"] and engine.end_ids == {CONTROLS["<eos>"]}
    service = CompletionService(engine, Config(max_tokens=16))
    assert service.template.name == "codegemma"  # detected through the server's tokenizer, as for a GGUF

    text = "def inc(value):\n    return \n"
    result = service.complete(CompletionRequest(uri="file:///a.py", path="a.py", text=text, offset=text.index("\n", 16)))
    [body] = llama_server.bodies("/completion")
    # The default SPM layout: <bos>a.py\n<pre><suf>suffix<mid>prefix, control tokens as ids.
    controls = [CONTROLS["<|fim_prefix|>"], CONTROLS["<|fim_suffix|>"]]
    assert body["prompt"][0] == CONTROLS["<bos>"] and controls[0] in body["prompt"]
    head = byte_text(body["prompt"][1:]).split("\n", 1)[0]
    assert head == "a.py" and body["prompt"][len(head) + 2: len(head) + 4] == controls
    assert byte_text(body["prompt"]).endswith("def inc(value):\n    return ")
    assert body["cache_prompt"] is True and body["stream"] is True and body["return_tokens"] is True
    assert body["temperature"] == 0 and body["repeat_penalty"] == 1.0 and body["n_predict"] == 16
    assert result.raw == "value + 1"
    s = result.stats
    # Figures as the server reported them (timings), not guessed.
    assert (s.reused_tokens, s.evaluated_tokens, s.generated_tokens, s.eval_ms, s.stop_reason) == (3, 7, 9, 1.5, "eos")


def test_llama_server_tokenize_keeps_control_spellings_as_text(llama_server):
    engine = connect(backend(llama_server.url))
    ids = engine.tokenize("x = '<|fim_middle|>'")
    assert ids == byte_ids("x = '<|fim_middle|>'", special=False)
    assert {r.body["parse_special"] for r in llama_server.requests if r.path == "/tokenize" and
            r.body["content"] == "x = '<|fim_middle|>'"} == {False}


def test_a_stop_id_in_the_stream_ends_the_completion_exactly(llama_server):
    engine = connect(backend(llama_server.url))
    llama_server.script = Script(reply=byte_ids("ab", False) + [CONTROLS["<|file_separator|>"]] + byte_ids("zz", False))
    stop = frozenset({CONTROLS["<|file_separator|>"], CONTROLS["<eos>"]})
    g = engine.generate(GenerationRequest(prompt=(2, 300), max_tokens=16, stop_ids=stop), lambda: False)
    assert (g.text, g.stats.stop_reason, g.stats.generated_tokens) == ("ab", "stop_token", 2)
    assert g.ids == tuple(byte_ids("ab", False))


def test_cancellation_closes_the_stream_and_the_server_sees_the_client_go(llama_server):
    engine = connect(backend(llama_server.url))
    llama_server.script = Script(reply=byte_ids("x" * 200, False), delay_s=0.01)
    started = time.perf_counter()
    deadline = started + 0.15
    g = engine.generate(GenerationRequest(prompt=(2, 300), max_tokens=200, stop_ids=frozenset()),
                        lambda: time.perf_counter() > deadline)
    assert g.stats.stop_reason == "cancelled" and g.stats.generated_tokens < 40
    assert llama_server.disconnected.wait(2.0), "the server kept streaming to a cancelled request"
    assert llama_server.sent_events < 60 and time.perf_counter() - started < 1.5


def test_cancellation_while_the_server_evaluates_the_prompt(llama_server):
    """No token has arrived yet (the read is blocked): the watcher closes the socket within ~20 ms."""
    engine = connect(backend(llama_server.url))
    llama_server.script = Script(delay_s=2.0)
    started = time.perf_counter()
    g = engine.generate(GenerationRequest(prompt=(2, 300), max_tokens=8, stop_ids=frozenset()),
                        lambda: time.perf_counter() - started > 0.1)
    assert g.stats.stop_reason == "cancelled" and g.text == ""
    assert time.perf_counter() - started < 1.0


def test_time_budget_and_stop_text_and_max_tokens(llama_server):
    engine = connect(backend(llama_server.url))
    llama_server.script = Script(reply=byte_ids("abc\ndef", False))
    g = engine.generate(GenerationRequest(prompt=(2, 300), max_tokens=16, stop_ids=frozenset(),
                                          stop_text=lambda t: "\n" in t), lambda: False)
    assert (g.text, g.stats.stop_reason) == ("abc\n", "stop_text")
    g = engine.generate(GenerationRequest(prompt=(2, 300), max_tokens=3, stop_ids=frozenset()), lambda: False)
    assert (g.text, g.stats.stop_reason) == ("abc", "max_tokens")
    assert llama_server.bodies("/completion")[-1]["n_predict"] == 3
    llama_server.script = Script(reply=byte_ids("y" * 100, False), delay_s=0.01)
    g = engine.generate(GenerationRequest(prompt=(2, 300), max_tokens=100, stop_ids=frozenset(), time_budget_s=0.1),
                        lambda: False)
    assert g.stats.stop_reason == "time_budget" and g.stats.generated_tokens < 50


def test_infill_sends_prefix_and_suffix_ids_and_context_text(llama_server):
    engine = connect(backend(llama_server.url, infill=True))
    service = CompletionService(engine, Config(max_tokens=8))
    parts = PromptParts(prefix=tuple(engine.tokenize("a = ")), suffix=tuple(engine.tokenize("\n")),
                        context=(ContextFile("lib.py", tuple(engine.tokenize("def f(): pass\n"))),))
    engine.generate(GenerationRequest(prompt=(2, 300), max_tokens=8, stop_ids=service.template.stop_ids, parts=parts),
                    lambda: False)
    [body] = llama_server.bodies("/infill")
    assert body["input_prefix"] == byte_ids("a = ", False) and body["input_suffix"] == byte_ids("\n", False)
    assert body["input_extra"] == [{"filename": "lib.py", "text": "def f(): pass\n"}]
    assert body["cache_prompt"] is True and not llama_server.bodies("/completion")


def test_infill_needs_llama_server(tiny_model):
    ollama = FakeOllama(str(tiny_model))
    try:
        with pytest.raises(ConfigError, match="backendInfill needs a llama-server"):
            connect(backend(ollama.url, infill=True))
    finally:
        ollama.close()


def test_context_larger_than_the_servers_window_is_refused_before_sending(llama_server):
    llama_server.n_ctx = 64
    engine = connect(backend(llama_server.url))
    with pytest.raises(ModelError, match="does not fit the backend's 64-token context"):
        engine.generate(GenerationRequest(prompt=tuple(range(64)), max_tokens=4, stop_ids=frozenset()), lambda: False)
    assert not llama_server.bodies("/completion")


def test_ollama_raw_prompt_ndjson_and_its_local_gguf_as_tokenizer(tiny_model):
    ollama = FakeOllama(str(tiny_model))
    try:
        engine = connect(backend(ollama.url))
        assert (engine.backend.kind, engine.backend.model) == ("ollama", "fake-coder:latest")
        assert engine.backend.tokenizer == str(tiny_model)  # Ollama runs here: its blob is the vocabulary
        service = CompletionService(engine, Config(max_tokens=16, postprocess=()))  # no early stop: Ollama ends it
        assert service.template.name == "codegemma"
        text = "def fib(n):\n    return \n"
        result = service.complete(CompletionRequest(uri="file:///f.py", path="f.py", text=text, offset=23))
        [body] = ollama.bodies("/api/generate")
        assert body["raw"] is True and body["stream"] is True and body["model"] == "fake-coder:latest"
        assert body["prompt"] == "f.py\n<|fim_prefix|><|fim_suffix|>\n<|fim_middle|>def fib(n):\n    return "  # SPM
        options = body["options"]
        assert options["temperature"] == 0 and options["repeat_penalty"] == 1.0 and options["num_predict"] == 16
        assert options["num_ctx"] == 4096 and "<|file_separator|>" in options["stop"]
        assert result.raw == "fibonacci(n - 1)\n"
        s = result.stats
        assert (s.evaluated_tokens, s.generated_tokens, s.eval_ms, s.gen_ms, s.stop_reason) == (5, 4, 2.0, 8.0, "eos")
    finally:
        ollama.close()


def test_ollama_prompt_never_spells_a_control_token_from_the_document(tiny_model):
    ollama = FakeOllama(str(tiny_model))
    try:
        engine = connect(backend(ollama.url))
        service = CompletionService(engine, Config(max_tokens=4))
        text = "s = '<|fim_middle|>'\nt = '<eos>'\nx = "
        service.complete(CompletionRequest(uri="file:///f.py", path="f.py", text=text, offset=len(text)))
        [body] = ollama.bodies("/api/generate")
        prompt = body["prompt"]
        assert prompt.count("<|fim_middle|>") == 1 and prompt.endswith("<|fim_middle|>" + text.replace("<", f"<{ZWSP}"))
        assert f"'<{ZWSP}|fim_middle|>'" in prompt and f"'<{ZWSP}eos>'" in prompt
    finally:
        ollama.close()


def test_neutralize_breaks_only_control_spellings():
    controls = {"<|fim_prefix|>", "<eos>", "[PREFIX]", "▁<PRE>"}
    text = "<div><|fim_prefix|>[PREFIX][x]<eos>▁<PRE> List<String> a[i]"
    out = neutralize(text, controls.__contains__)
    assert out == f"<div><{ZWSP}|fim_prefix|>[{ZWSP}PREFIX][x]<{ZWSP}eos>▁{ZWSP}<PRE> List<String> a[i]"
    assert neutralize(out, controls.__contains__) == out  # stable: nothing left to break
    assert neutralize("no brackets", lambda s: True) == "no brackets"


def test_openai_stream_events_parse():
    wire = OpenAIWire()
    assert wire.parse({"choices": [{"text": "ab", "finish_reason": None}]}).text == "ab"
    empty = wire.parse({"choices": [{"text": "", "finish_reason": None}]})
    assert empty.token and not empty.text  # a control token, which llama.cpp renders as nothing
    assert wire.parse({"choices": [{"text": "", "finish_reason": "length"}]}).finish == "max_tokens"
    usage = wire.parse({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 3,
                                                 "prompt_tokens_details": {"cached_tokens": 8}}})
    assert usage.figures.reused == 8 and usage.figures.evaluated == 2 and not usage.token
    path, body = wire.completion("p", Sampling(4, ("<eos>",), "m", 99))
    assert path == "/v1/completions" and body["stop"] == ["<eos>"] and body["model"] == "m"
    with pytest.raises(BackendError, match="boom"):
        wire.parse({"error": {"message": "boom"}})


def test_openai_usage_after_the_finish_event_is_read(llama_server):
    """vLLM-style streams send usage after the finishing event: the figures still come from the server."""
    events = [{"choices": [{"text": "ab", "finish_reason": None}]},
              {"choices": [{"text": "", "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1,
                                        "prompt_tokens_details": {"cached_tokens": 4}}}, "[DONE]"]
    llama_server.post_v1_completions = lambda h, body: llama_server.stream(h, events, sse, "text/event-stream")
    transport = Transport(llama_server.url)
    vocab = LlamaServerVocab(transport, {})
    info = ModelInfo(llama_server.url, "openai", "m", "", 0, 0, 4096, 0, False, 0)
    engine = RemoteEngine(transport, OpenAIWire(), vocab, Backend(llama_server.url, "openai", "m", "server", 4096), info)
    g = engine.generate(GenerationRequest(prompt=(300, 301), max_tokens=8, stop_ids=frozenset()), lambda: False)
    assert (g.text, g.stats.stop_reason, g.stats.reused_tokens, g.stats.evaluated_tokens) == ("ab", "eos", 4, 1)
    [body] = llama_server.bodies("/v1/completions")
    assert body["prompt"] == "de" and body["stream_options"] == {"include_usage": True}
