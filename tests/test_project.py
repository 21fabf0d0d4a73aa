"""Promises about the project itself: the README's commands, CI, layering, and a cheap start-up."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    assert block, "README must open with a fenced block of commands"
    assert text.index(block.group(0)) < text.index("\n## "), "the commands come before any section"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    install_and_chat, test = readme_commands()
    assert install_and_chat.endswith('exobridge chat "Hi"')
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert readme_commands()[1] in ci.splitlines()


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "exobridge" / "core").rglob("*.py")), ids=lambda p: p.name)
def test_core_never_imports_the_cli_or_the_renderer(path):
    bad = {
        n
        for n in imports_of(path)
        if n.split(".")[0] in ("typer", "rich", "click") or n.startswith(("exobridge.cli", "exobridge.render"))
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", sorted((ROOT / "exobridge" / "render").rglob("*.py")), ids=lambda p: p.name)
def test_renderer_never_imports_the_cli(path):
    assert not {n for n in imports_of(path) if n.startswith("exobridge.cli")}


def modules_loaded_by(*argv: str) -> set[str]:
    code = "import sys; sys.argv = ['exobridge', *sys.argv[1:]]; from exobridge.cli.app import main; main()"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("chat", "--help")])
def test_help_and_version_do_not_pay_for_heavy_imports(argv):
    loaded = modules_loaded_by(*argv)
    heavy = {m for m in loaded if m.split(".")[0] in ("httpx", "httpcore", "rich", "tomlkit", "sqlite3", "httpx_sse")}
    assert not heavy, f"exobridge {' '.join(argv)} imported {sorted(heavy)}"


def test_version_matches_the_package():
    from exobridge import __version__

    proc = subprocess.run([sys.executable, "-m", "exobridge", "--version"], capture_output=True, text=True, timeout=30)
    assert proc.stdout == f"exobridge {__version__}\n"


def test_every_command_group_is_listed_and_reachable():
    run = [sys.executable, "-m", "exobridge"]
    top = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=30)
    groups = ("chat", "providers", "models", "config", "keys", "doctor", "completions")
    assert all(re.search(rf"^\s+{name}\s", top.stdout, re.M) for name in groups), top.stdout
    for name in groups:
        sub = subprocess.run([*run, name, "--help"], capture_output=True, text=True, timeout=30)
        assert sub.returncode == 0 and f"Usage: exobridge {name}" in sub.stdout, sub.stderr
    typo = subprocess.run([*run, "chatt"], capture_output=True, text=True, timeout=30)
    assert typo.returncode == 2 and "No such command 'chatt'" in typo.stderr
