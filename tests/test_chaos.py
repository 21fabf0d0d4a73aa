"""Chaos: `chat` against loopback providers that serve random mixes of faults (tests/chaos.py).

Whatever they send: no traceback, a documented exit code, one JSON object under --json, no secret (nor any
8-character piece of one) in stdout, stderr or any file exobridge wrote, bounded time (pytest-timeout) and
bounded memory. `EXOBRIDGE_CHAOS_RUNS=200 pytest tests/test_chaos.py` runs more seeds.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from exobridge.core.routing import ChatRequest, Router
from tests.chaos import CANARY_KEY, FAST, FAULTS, chaos_config_text, chaos_server, leaked
from tests.test_routing import make_config

RUNS = int(os.environ.get("EXOBRIDGE_CHAOS_RUNS", "10"))
DOCUMENTED_EXITS = {0, 3, 5}


def files_written(root: Path, *, text_state_only: bool = False) -> str:
    """Every file the run left, as text. `text_state_only` leaves out the history database: it keeps the model's
    reply exactly as received (shown escaped, never raw) and its pages are binary anyway."""
    texts = []
    for path in root.rglob("*"):
        # The config file and its parse cache hold the configured header secret by design (the user wrote it).
        if not path.is_file() or path.name == "config.toml" or path.name.startswith("config-parsed"):
            continue
        if text_state_only and ".db" in path.name:
            continue
        texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(RUNS))
def test_chat_survives_chaos(seed: int, server, write_config, cli, isolated: Path) -> None:
    servers = [chaos_server(server, seed * 2 + i) for i in range(2)]
    write_config(chaos_config_text([s.url for s in servers], first_kind="exo" if seed % 2 else "openai"))
    args = ["chat", "-m", "m", "Hi"] if seed % 3 == 2 else ["chat", "--json", "-m", "m", "Hi"]
    if seed % 4 == 1:
        args.insert(1, "--no-stream")
    result: Any = cli(*args, env={"CHAOS_KEY": CANARY_KEY})
    served = [s.served for s in servers]  # type: ignore[attr-defined]
    assert result.exit_code in DOCUMENTED_EXITS, (served, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, (served, result.stderr)
    if "--json" in args:
        data = json.loads(result.stdout)
        assert isinstance(data, dict) and "error" in data, data
    assert not leaked(result.stdout + result.stderr), (served, result.stdout, result.stderr)
    # Provider strings reach stderr escaped: no raw ESC, CSI or BEL from a server (model text on stdout is
    # byte-exact when piped, by contract, so only stderr is checked).
    assert not set(result.stderr) & {"\x1b", "\x9b", "\x07", "\x7f"}, (served, result.stderr)
    assert not leaked(files_written(isolated)), served
    state = files_written(isolated, text_state_only=True)
    assert "\x1b" not in state and "\x9b" not in state, served  # state files keep provider text escaped


# --- memory: what a server sends never grows the reply reader past its caps --------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", ["endless_json", "bomb", "huge_line", "drip_json"])
def test_peak_memory_of_an_attempt_stays_bounded(fault: str, server) -> None:
    hostile = chaos_server(server, 0, only=[fault])
    cfg = make_config({"only": {"kind": "openai", "url": hostile.url, **FAST}})
    from exobridge.core import model_targets
    from tests.chaos import gzip_bomb

    gzip_bomb()  # built before measuring: the server's own memory is not the client's
    tracemalloc.start()
    try:
        result = Router(cfg).run(
            ChatRequest([{"role": "user", "content": "x"}], "m", stream=fault != "endless_json"),
            model_targets.targets("m", cfg),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 3
    assert peak < 24 * 1024 * 1024, f"{fault}: peak {peak / 1e6:.1f} MB"


def test_every_fault_is_served_by_name(server) -> None:
    assert {"drip_headers", "bomb", "echo_key_401", "huge_retry_after", "redirect"} <= set(FAULTS)
