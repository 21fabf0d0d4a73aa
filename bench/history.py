"""The benchmark of issue 11: what the history costs.

    python3 bench/history.py            # 15 runs of each command, 100 000 requests in the database
    python3 bench/history.py --runs 7 --rows 20000

Ratios from one run (each pair interleaved, medians), against these targets:
- recording: `chat --no-stream` against a loopback provider, with the history vs `--no-log` (≤ 1.03);
- with ROWS requests in the database: `history list` and `usage` ≤ 2× `exobridge --help`, `history search`
  ≤ 3× `exobridge --help`.
Every command runs as the installed `exobridge`, with a private HOME, config, cache and data dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"recording": 1.03, "history list": 2.0, "usage": 2.0, "history search": 3.0}


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["exobridge", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def interleaved(a: list[str], b: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    first, second = [], []
    for _ in range(runs):
        first.append(timed(a, env))
        second.append(timed(b, env))
    return statistics.median(first), statistics.median(second)


def seed(rows: int) -> None:
    from exobridge.core import history

    store = history.Store()
    conn = store.open()
    now = time.time()
    conn.execute("BEGIN")
    for i in range(rows):
        store.add(
            history.Entry(
                conversation=f"c{i // 3}",
                prompt=f"prompt {i} about topic {i % 97}",
                reply="reply text lorem ipsum dolor sit amet " * 4,
                outcome="complete",
                provider=("exo", "openrouter", "huggingface")[i % 3],
                requested_model="llama-3.2-3b",
                served_model="llama-3.2-3b",
                prompt_tokens=20,
                completion_tokens=100,
                cost=(0.0, 0.001, None)[i % 3],
                cost_source=("free", "reported", None)[i % 3],
                ts=now - i * 30,
            )
        )
    conn.execute("COMMIT")
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rows", type=int, default=100_000)
    opts = parser.parse_args()

    from tests.loopback import LoopbackServer, completion

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXOBRIDGE_")}
        env.update(
            HOME=str(home),
            EXOBRIDGE_CONFIG=str(home / "config.toml"),
            EXOBRIDGE_KEYS_FILE=str(home / "keys.toml"),
            EXOBRIDGE_CACHE_DIR=str(home / "cache"),
            EXOBRIDGE_DATA_DIR=str(home / "data"),
        )
        server = LoopbackServer()
        server.route("POST", "/v1/chat/completions")(lambda ex: ex.reply(200, completion("Hello", model="m")))
        (home / "config.toml").write_text(
            "[providers.exo]\nenabled = false\n[providers.openrouter]\nenabled = false\n"
            "[providers.huggingface]\nenabled = false\n"
            f'[providers.local]\nkind = "openai"\nurl = "{server.url}/v1"\n'
        )
        results: dict[str, float] = {}
        chat = ["chat", "--no-stream", "-m", "m", "Hi"]
        with_log, without = interleaved(chat, [*chat, "--no-log"], env, opts.runs)
        results["recording"] = with_log / without
        server.close()

        os.environ.update({k: v for k, v in env.items() if k.startswith("EXOBRIDGE_") or k == "HOME"})
        seed(opts.rows)
        for name, args in (
            ("history list", ["history", "list"]),
            ("usage", ["usage"]),
            ("history search", ["history", "search", "topic"]),
        ):
            value, help_time = interleaved(args, ["--help"], env, opts.runs)
            results[name] = value / help_time

    failed = False
    for name, ratio in results.items():
        ok = ratio <= TARGETS[name]
        failed |= not ok
        print(f"{name:16} {ratio:5.2f}×  (target ≤ {TARGETS[name]:.2f}×)  {'ok' if ok else 'OVER'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
