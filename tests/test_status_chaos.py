"""`models --refresh` and `providers status` against the chaos servers of tests/chaos.py (issue 9, guards):
whatever mix of drips, endless bodies, gzip bombs, resets, bad JSON, escapes, markup, redirects and echoed
secrets the servers serve, each run ends (pytest-timeout bounds it), exits with a documented code, shows no
traceback, leaks no piece of a key or header secret (output or cache), and puts no raw escape on a terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from exobridge.render.io import IOStreams
from tests.chaos import CANARY_HEADER, CANARY_KEY, chaos, leaked

ROUTES = ("/node_id", "/healthcheck", "/state", "/topology", "/v1/topology", "/v1/models", "/models", "/key")
DOCUMENTED = {"models": {0}, "providers": {0, 3}}


def chaos_config(server, write_config, seed: int) -> None:
    urls = []
    for index in range(2):
        srv = server()
        handler, _ = chaos(seed * 2 + index)
        for path in ROUTES:
            srv.route("GET", path)(handler)
        urls.append(srv.url)
    write_config(
        f"""
        default_model = "m"
        [providers.exo]
        url = "{urls[0]}"
        connect_timeout = 0.3
        first_token_timeout = 0.5
        [providers.openrouter]
        enabled = false
        [providers.huggingface]
        enabled = false
        [providers.lab]
        kind = "openai"
        url = "{urls[1]}"
        key_env = "CHAOS_KEY"
        connect_timeout = 0.3
        first_token_timeout = 0.5
        headers = {{ "X-Api-Key" = "{CANARY_HEADER}" }}
        """
    )


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("args", [("models", "--refresh"), ("providers", "status")], ids=["models", "status"])
def test_lists_and_status_survive_chaos(seed: int, args: tuple[str, ...], server, write_config, cli) -> None:
    chaos_config(server, write_config, seed)
    env = {"CHAOS_KEY": CANARY_KEY}
    result = cli(*args, "--json", env=env)
    output = result.stdout + result.stderr
    assert result.exit_code in DOCUMENTED[args[0]], (result.exit_code, output[-800:])
    assert "Traceback" not in output and "internal error" not in output, output[-800:]
    assert not leaked(output)
    json.loads(result.stdout)  # exactly one JSON object, whatever happened

    io = IOStreams.test(stdout_tty=True, stderr_tty=True, env={"NO_COLOR": "1"}, width=200)
    tty = cli(*args, io=io, env=env)
    shown = io.stdout_text() + io.stderr_text()
    assert tty.exit_code in DOCUMENTED[args[0]], shown[-800:]
    assert not set(shown) & {"\x1b", "\x9b", "\x07"}, shown[-800:]  # a terminal without colour: any ESC is theirs
    assert not leaked(shown) and "Traceback" not in shown

    cache = Path(os.environ["EXOBRIDGE_CACHE_DIR"])
    stored = "".join(f.read_text(errors="replace") for f in cache.glob("*.json")) if cache.is_dir() else ""
    assert not leaked(stored)
