"""Benchmark: a black-holed Exo costs its timeout once, then nothing.

Exo accepts TCP and never answers (first_token_timeout 1 s); a loopback fallback answers. For each round the
state is cleared, then `exobridge chat` runs twice: run 1 pays the timeout and remembers it, run 2 skips the
cooling Exo. A third config has Exo disabled. Reports medians and the ratios:

    run 2 ÷ run 1          (small: the timeout is paid once)
    run 2 ÷ Exo disabled   (target ≤ 1.05: a cooling Exo costs about as much as no Exo)

Usage: .venv/bin/python bench/cooldown.py [ROUNDS]   (default 7; not part of the test suite)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.loopback import BlackHole, LoopbackServer, stream_words  # noqa: E402


def exobridge() -> list[str]:
    script = Path(sys.executable).parent / "exobridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exobridge"]


def config(exo_url: str, fallback_url: str, exo_enabled: bool) -> str:
    return f"""default_model = "m"

[providers.exo]
url = "{exo_url}"
enabled = {"true" if exo_enabled else "false"}
connect_timeout = 1
first_token_timeout = 1

[providers.openrouter]
enabled = false

[providers.huggingface]
enabled = false

[providers.fallback]
kind = "openai"
url = "{fallback_url}"
priority = 5
"""


def timed(env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [*exobridge(), "chat", "-m", "m", "Hi"], env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=60
    )
    took = time.perf_counter() - started
    if proc.returncode != 0 or proc.stdout != b"hello from fallback\n":
        raise SystemExit(f"chat failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return took


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    work = Path(tempfile.mkdtemp(prefix="exobridge-bench-"))
    hole = BlackHole()
    fallback = LoopbackServer()
    fallback.route("POST", "/chat/completions")(stream_words(["hello ", "from ", "fallback"]))
    try:
        base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN")) and "PROXY" not in k}
        base.update(
            EXOBRIDGE_KEYS_FILE=str(work / "keys.toml"),
            EXOBRIDGE_DATA_DIR=str(work / "data"),
            NO_COLOR="1",
        )
        cache = work / "cache"
        (work / "on.toml").write_text(config(hole.url, fallback.url, True), encoding="utf-8")
        (work / "off.toml").write_text(config(hole.url, fallback.url, False), encoding="utf-8")
        on = {**base, "EXOBRIDGE_CONFIG": str(work / "on.toml"), "EXOBRIDGE_CACHE_DIR": str(cache)}
        off = {**base, "EXOBRIDGE_CONFIG": str(work / "off.toml"), "EXOBRIDGE_CACHE_DIR": str(work / "cache-off")}
        timed(off)  # warm the interpreter's file cache
        first, second, disabled = [], [], []
        for _ in range(rounds):
            shutil.rmtree(cache, ignore_errors=True)
            first.append(timed(on))
            second.append(timed(on))
            disabled.append(timed(off))
        m1, m2, m0 = (statistics.median(x) for x in (first, second, disabled))
        print(f"rounds: {rounds}")
        print(f"run 1 (Exo black-holed, pays the timeout): median {m1 * 1000:.0f} ms")
        print(f"run 2 (Exo cooling down, skipped):          median {m2 * 1000:.0f} ms")
        print(f"Exo disabled:                               median {m0 * 1000:.0f} ms")
        print(f"run 2 / run 1        = {m2 / m1:.3f}")
        ratio = m2 / m0
        print(f"run 2 / Exo disabled = {ratio:.3f} ({'ok' if ratio <= 1.05 else 'ABOVE'} target 1.05)")
    finally:
        fallback.close()
        hole.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
