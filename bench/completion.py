"""How much a TAB costs: a completion request against `exobridge --help`, and `exobridge --help` against a
minimal Typer app's `--help` (all as fresh processes).

    python bench/completion.py [--runs N]

Runs each command N times (default 15, at least 5), alternating, in a private HOME with a config of four
providers and a model-list cache of 400 ids, and prints the medians and their ratios. Targets (issue 8, point
6): completing `exobridge chat -m open` (config + model table + cache, public Typer APIs only) costs at most
1.3x printing the help; `exobridge --help` costs at most 1.0x a one-command Typer app's `--help`. Exits 1 when
a ratio is above its target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
default_model = "llama-3.2-3b"

[providers.exo]
url = "http://127.0.0.1:52415"

[providers.lab]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
priority = 3

[models.my-model]
lab = "org/my-model"
"""


def exobridge() -> str:
    script = Path(sys.executable).parent / "exobridge"
    return str(script) if script.exists() else (shutil.which("exobridge") or "exobridge")


def seed(home: Path) -> dict[str, str]:
    """A private HOME with a config and a cache laid out where a user's would be (XDG dirs)."""
    config_dir = home / ".config" / "exobridge"
    cache_dir = home / ".cache" / "exobridge"
    config_dir.mkdir(parents=True)
    cache_dir.mkdir(parents=True)
    (config_dir / "config.toml").write_text(CONFIG, encoding="utf-8")
    entries = [
        {"id": f"vendor{i % 40}/model-{i}", "name": f"Model {i}", "context_length": 131072, "description": "x" * 200}
        for i in range(400)
    ]
    cache = {"openrouter": {"at": time.time(), "value": entries}, "exo": {"at": time.time(), "value": entries[:20]}}
    (cache_dir / "models.json").write_text(json.dumps(cache), encoding="utf-8")
    # As installed: bytecode cached (PYTHONDONTWRITEBYTECODE would recompile every module on every run).
    skip = ("EXOBRIDGE_", "_EXOBRIDGE", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
    )
    return env


MINIMAL_APP = """
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    \"\"\"Say hello.\"\"\"


app()
"""
COMPLETION_TARGET = 1.3
HELP_TARGET = 1.0


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--line", default="exobridge chat -m open", help="the command line to complete")
    options = parser.parse_args()
    runs = max(5, options.runs)
    with tempfile.TemporaryDirectory() as tmp:
        env = seed(Path(tmp))
        complete_env = dict(env, _EXOBRIDGE_COMPLETE="complete_bash", _TYPER_COMPLETE_ARGS=options.line)
        command = exobridge()
        _, answer = timed([command], complete_env)  # warm the OS cache; check the answer is real
        if "plain," not in answer:
            print(f"completion answered unexpectedly: {answer!r}", file=sys.stderr)
            return 1
        minimal = Path(tmp) / "minimal_app.py"
        minimal.write_text(MINIMAL_APP, encoding="utf-8")
        timed([sys.executable, str(minimal), "--help"], env)  # compile it once, as an installed app would be
        help_times, complete_times, minimal_times = [], [], []
        for _ in range(runs):
            help_times.append(timed([command, "--help"], env)[0])
            complete_times.append(timed([command], complete_env)[0])
            minimal_times.append(timed([sys.executable, str(minimal), "--help"], env)[0])
    help_median = statistics.median(help_times)
    complete_median = statistics.median(complete_times)
    minimal_median = statistics.median(minimal_times)
    ratio = complete_median / help_median
    help_ratio = help_median / minimal_median
    print(f"minimal Typer app --help:     median {minimal_median * 1000:.1f} ms over {runs} runs")
    print(f"exobridge --help:             median {help_median * 1000:.1f} ms over {runs} runs")
    print(f"completion {options.line!r}: median {complete_median * 1000:.1f} ms over {runs} runs")
    print(f"ratio completion / --help:    {ratio:.2f} (target <= {COMPLETION_TARGET:.2f})")
    print(f"ratio --help / minimal app:   {help_ratio:.2f} (target <= {HELP_TARGET:.2f})")
    return 0 if ratio <= COMPLETION_TARGET and help_ratio <= HELP_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
