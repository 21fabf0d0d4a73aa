"""The benchmark of issue 11: what the history costs.

    python3 bench/history.py            # 15 runs of each command (45 for recording), 100 000 requests in the database
    python3 bench/history.py --runs 7 --rows 20000

Ratios from one run (each pair interleaved, medians), against these targets:
- recording: `chat --no-stream` against a loopback provider, with the history vs `--no-log` (≤ 1.03). What
  recording adds (3-5 ms) is within the run-to-run noise of a ~270 ms command, so this pair runs three times as
  often as the others;
- with ROWS requests in the database: `history list` and `usage` ≤ 2× `exobridge --help`, `history search`
  ≤ 3× `exobridge --help`;
- the interactive session: from starting `exobridge chat` on a pseudo-terminal to its first `>` prompt
  ≤ 1.5× `exobridge --help` (skipped without prompt_toolkit).
Every command runs as the installed `exobridge`, with a private HOME, config, cache and data dir. The package's
bytecode is compiled first (as an installed package has it), so a source file edited since the last run is
not compiled again on every run (PYTHONDONTWRITEBYTECODE would otherwise keep it so).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECORDING_RUNS_FACTOR = 3
TARGETS = {"recording": 1.03, "history list": 2.0, "usage": 2.0, "history search": 3.0, "session prompt": 1.5}
PROMPT = re.compile(r"(?m)^>")
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def exobridge_command() -> list[str]:
    """The console script next to this interpreter, as bench/run.py uses it: not whatever `exobridge` comes first
    on PATH (a pyenv shim there adds ~100 ms to every run, which would pull every ratio toward 1)."""
    script = Path(sys.executable).parent / "exobridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exobridge"]


EXOBRIDGE = exobridge_command()


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([*EXOBRIDGE, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def first_prompt(env: dict[str, str]) -> float:
    """Seconds from starting `exobridge chat` on a pseudo-terminal of its own to its first `>` prompt."""
    import pty
    import select

    started = time.perf_counter()
    pid, master = pty.fork()
    if pid == 0:  # the child
        try:
            os.execvpe(EXOBRIDGE[0], [*EXOBRIDGE, "chat"], env)
        finally:
            os._exit(127)
    seen = ""
    try:
        while not PROMPT.search(TERMINAL_CODES.sub("", seen)):
            ready, _, _ = select.select([master], [], [], 30)
            data = os.read(master, 65536) if ready else b""
            if not data:
                raise RuntimeError(f"no prompt from exobridge chat; it showed {seen!r}")
            seen += data.decode("utf-8", "replace")
        elapsed = time.perf_counter() - started
        os.write(master, b"\x04")  # Ctrl-D ends the session
    finally:
        os.waitpid(pid, 0)
        os.close(master)
    return elapsed


def interleaved(a: list[str] | None, b: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Medians of `a` (None: the session's first prompt) and `b`, run in turns (which goes first alternates, so
    neither always runs on the caches the other just warmed)."""
    first, second = [], []
    for turn in range(runs):
        if turn % 2:
            second.append(timed(b, env))
        first.append(timed(a, env) if a is not None else first_prompt(env))
        if not turn % 2:
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

    import compileall

    from tests.loopback import LoopbackServer, completion

    compileall.compile_dir(str(ROOT / "exobridge"), quiet=1)
    start_load = " ".join(f"{x:.2f}" for x in os.getloadavg())

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
        medians: dict[str, tuple[float, float]] = {}  # (the command, what it is compared with), seconds
        chat = ["chat", "--no-stream", "-m", "m", "Hi"]
        with_log, without = interleaved(chat, [*chat, "--no-log"], env, RECORDING_RUNS_FACTOR * opts.runs)
        results["recording"] = with_log / without
        medians["recording"] = (with_log, without)
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
            medians[name] = (value, help_time)
        if importlib.util.find_spec("prompt_toolkit") is not None:
            terminal = {**env, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "100", "LINES": "30"}
            value, help_time = interleaved(None, ["--help"], terminal, opts.runs)
            results["session prompt"] = value / help_time
            medians["session prompt"] = (value, help_time)

    print(f"load average at start: {start_load}, now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failed = False
    for name, ratio in results.items():
        ok = ratio <= TARGETS[name]
        failed |= not ok
        value, base = medians[name]
        print(
            f"{name:16} {ratio:5.2f}×  (target ≤ {TARGETS[name]:.2f}×)  {'ok' if ok else 'OVER'}"
            f"   {value * 1000:4.0f} ms vs {base * 1000:4.0f} ms"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
