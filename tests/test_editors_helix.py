"""The Helix setup (editors/helix/languages.toml): no Helix binary is reachable here, so the file is checked
against what Helix reads and what the server accepts — the server's documented keys, with valid values — and the
real server is driven through the startup sequence Helix uses."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
from lsprotocol import types

from codegemma_lsp.config import KEYS, Config, apply_settings, flatten
from tests.conftest import STAND_IN, lsp_session, server_command, status

LANGUAGES = Path(__file__).resolve().parents[1] / "editors" / "helix" / "languages.toml"
COMMON = {"python", "javascript", "typescript", "tsx", "rust", "go", "c", "cpp", "java"}


def load() -> dict:
    with LANGUAGES.open("rb") as f:
        return tomllib.load(f)


def test_server_entry_runs_codegemma_lsp_with_documented_settings():
    server = load()["language-server"]["codegemma-lsp"]
    assert server["command"] == "codegemma-lsp"
    assert set(server) <= {"command", "args", "config", "environment", "timeout"}
    settings = server["config"]
    assert set(flatten(settings)) <= set(KEYS)
    config, messages = apply_settings(Config(), settings)
    assert messages == []
    assert config == Config()  # the file spells out the server's defaults, so it documents them truthfully


def test_common_languages_keep_their_servers_and_add_codegemma_last():
    languages = {entry["name"]: entry for entry in load()["language"]}
    assert COMMON <= set(languages)
    for name, entry in languages.items():
        servers = entry["language-servers"]
        assert set(entry) == {"name", "language-servers"}, name  # merged by name into Helix's defaults
        assert servers[-1] == "codegemma-lsp", name
        assert servers.count("codegemma-lsp") == 1 and len(set(servers)) == len(servers), name
        assert len(servers) >= 2, f"{name}: Helix's default servers must stay in the list"


# --- the server driven the way Helix drives it --------------------------------------------------------------



@pytest.mark.model
async def test_helix_startup_sequence_reaches_ready_without_lost_responses(stand_in_model, tmp_path):
    """Helix sends `config` as initializationOptions and, right after `initialized`, the same `config` again with
    workspace/didChangeConfiguration; its status line keeps asking the server meanwhile."""
    settings = load()["language-server"]["codegemma-lsp"]["config"] | {"model": STAND_IN}
    async with lsp_session(server_command(), init_options=settings, root=tmp_path, wait_ready=False) as (client, _):
        await asyncio.sleep(0.1)  # inside the model load
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
        lost, state = 0, None
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            try:
                state = (await asyncio.wait_for(status(client), timeout=2))["state"]
            except asyncio.TimeoutError:
                lost += 1
                continue
            if state in ("ready", "error"):
                break
            await asyncio.sleep(0.02)
        assert (state, lost) == ("ready", 0)
