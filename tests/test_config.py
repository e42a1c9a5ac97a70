"""One configuration object: client settings validated once, bad values fall back with a message."""

from codegemma_lsp.config import Config, apply_settings, reload_needed


def test_documented_keys_nested_and_dotted():
    config, messages = apply_settings(
        Config(),
        {"model": "qwen2.5-coder-0.5b-q4", "nGpuLayers": 0, "maxTokens": 32, "prefixTokens": 512,
         "suffixTokens": 128, "context": {"crossFile": False}, "context.maxTokens": 256},
    )
    assert messages == []
    assert config.model == "qwen2.5-coder-0.5b-q4" and config.n_gpu_layers == 0 and config.max_tokens == 32
    assert config.prefix_tokens == 512 and config.suffix_tokens == 128
    assert config.context.cross_file is False and config.context.max_tokens == 256


def test_vscode_section_wrapper():
    config, messages = apply_settings(Config(), {"codegemma": {"maxTokens": 16}})
    assert config.max_tokens == 16 and messages == []


def test_invalid_values_keep_current_value_with_a_message():
    base = Config(max_tokens=48)
    config, messages = apply_settings(
        base, {"maxTokens": "lots", "nGpuLayers": True, "prefixTokens": -5, "context": {"crossFile": "yes"}, "bogus": 1}
    )
    assert config == base
    assert len(messages) == 5
    assert any("bogus" in m for m in messages) and any("maxTokens" in m for m in messages)


def test_fim_layout_is_psm_or_spm():
    assert Config().fim_layout == "spm"
    assert apply_settings(Config(), {"fimLayout": "psm"}) == (Config(fim_layout="psm"), [])
    config, messages = apply_settings(Config(), {"fimLayout": "mps"})
    assert config == Config() and "psm, spm" in messages[0]


def test_non_object_settings():
    config, messages = apply_settings(Config(), ["model"])
    assert config == Config() and messages
    assert apply_settings(Config(), None) == (Config(), [])


def test_reload_only_for_model_level_settings():
    base = Config()
    assert reload_needed(base, apply_settings(base, {"model": "other"})[0])
    assert reload_needed(base, apply_settings(base, {"nGpuLayers": 0})[0])
    assert not reload_needed(base, apply_settings(base, {"maxTokens": 10})[0])


def test_backend_keys_validated_and_a_backend_change_reconnects():
    config, messages = apply_settings(Config(), {
        "backend": " https://gpu-box.example:8443/llama/ ", "backendKind": "llama-server", "backendModel": "coder",
        "backendApiKeyEnv": "TEAM_KEY", "backendTokenizer": "qwen2.5-coder-0.5b-q4", "backendInfill": True,
    })
    assert messages == []
    b = config.backend
    assert b.url == "https://gpu-box.example:8443/llama" and b.kind == "llama-server" and b.model == "coder"
    assert b.api_key_env == "TEAM_KEY" and b.tokenizer == "qwen2.5-coder-0.5b-q4" and b.infill is True
    assert reload_needed(Config(), config)
    bad, messages = apply_settings(config, {"backend": "ftp://x", "backendKind": "vllm", "backendApiKeyEnv": "1 X",
                                            "backendInfill": "yes"})
    assert bad == config and len(messages) == 4
    assert any("http:// or https://" in m for m in messages)
    off, messages = apply_settings(config, {"backend": "", "backendModel": None})
    assert off.backend.url == "" and off.backend.model is None and messages == []


def test_time_budget_reaches_the_engine_in_seconds():
    from pathlib import Path

    from codegemma_lsp.completion import CompletionRequest, CompletionService
    from tests.fake_engine import FakeEngine

    class Recording(FakeEngine):
        def generate(self, request, cancelled):
            self.budgets.append(request.time_budget_s)
            return super().generate(request, cancelled)

    config, messages = apply_settings(Config(), {"timeBudgetMs": 750})
    assert messages == [] and config.time_budget_ms == 750
    assert apply_settings(config, {"timeBudgetMs": -1})[0].time_budget_ms == 750  # invalid: kept, with a message
    engine = Recording(Path("fake.gguf"), config)
    engine.budgets = []
    request = CompletionRequest(uri="file:///a.py", path="a.py", text="x = ", offset=4)
    CompletionService(engine, config).complete(request)
    CompletionService(engine, Config()).complete(request)
    assert engine.budgets == [0.75, None]  # 0 means no limit


def test_kv_shift_is_auto_on_or_off_and_auto_means_cpu_only():
    import dataclasses
    from pathlib import Path

    from codegemma_lsp.completion import CompletionRequest, CompletionService
    from tests.fake_engine import FakeEngine

    assert Config().kv_shift == "auto"
    assert apply_settings(Config(), {"kvShift": False})[0].kv_shift == "off"
    assert apply_settings(Config(), {"kvShift": True})[0].kv_shift == "on"
    config, messages = apply_settings(Config(), {"kvShift": "sometimes"})
    assert config.kv_shift == "auto" and "auto, on, off" in messages[0]

    class Recording(FakeEngine):
        def generate(self, request, cancelled):
            self.shifts.append(request.shift)
            return super().generate(request, cancelled)

    cpu = Recording(Path("fake.gguf"), Config())
    gpu = Recording(Path("fake.gguf"), Config())
    gpu.info = dataclasses.replace(gpu.info, gpu_offload_supported=True, n_gpu_layers=-1)
    request = CompletionRequest(uri="file:///a.py", path="a.py", text="x = ", offset=4)
    for engine in (cpu, gpu):
        engine.shifts = []
        for setting in ("auto", "on", "off"):
            CompletionService(engine, Config(kv_shift=setting)).complete(request)
    assert cpu.shifts == [True, True, False]
    assert gpu.shifts == [False, True, False]  # a GPU evaluates a changed block exactly in milliseconds
