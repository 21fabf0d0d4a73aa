"""Promises about the project itself: the README's commands, CI, layering, and a cheap start-up."""

from __future__ import annotations

import ast
import os
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


def test_ci_runs_the_suite_again_on_exactly_the_declared_floors():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    floors = {
        name.lower(): version
        for line in (ROOT / ".ci" / "floors.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
        for name, version in [line.split("==")]
    }
    assert {name.lower(): version for name, version in (d.split(">=") for d in declared)} == floors
    assert "-c .ci/floors.txt" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


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


SERVER_LIBRARIES = ("uvicorn", "starlette", "h11", "anyio")


@pytest.mark.process  # start-up: what a fresh interpreter imports
@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("chat", "--help")])
def test_help_and_version_do_not_pay_for_heavy_imports(argv):
    """One fresh interpreter per command line holds every start-up promise about it: no HTTP, Rich, TOML or
    SQLite, and neither `exobridge serve`'s modules (its dashboard included) nor the ASGI server."""
    loaded = modules_loaded_by(*argv)
    heavy = {m for m in loaded if m.split(".")[0] in ("httpx", "httpcore", "rich", "tomlkit", "sqlite3", "httpx_sse")}
    assert not heavy, f"exobridge {' '.join(argv)} imported {sorted(heavy)}"
    server = {m for m in loaded if m.startswith("exobridge.serve") or m.split(".")[0] in SERVER_LIBRARIES}
    assert not server, f"exobridge {' '.join(argv)} loaded the server: {sorted(server)}"


@pytest.mark.process  # start-up: what a fresh interpreter imports
def test_bare_chat_loads_neither_typer_nor_pydantic(tmp_path):
    """`exobridge chat` alone (the interactive session, or a prompt piped on stdin) is not parsed, so the console
    script runs it without importing Typer, click or Pydantic (cli/__init__.py `without_parse`)."""
    code = "import sys; sys.argv = ['exobridge', 'chat']; from exobridge.cli import main; main()"
    env = {**os.environ, "EXOBRIDGE_CONFIG": str(tmp_path / "none.toml"), "EXOBRIDGE_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], input="", capture_output=True, text=True, timeout=30, env=env
    )
    assert proc.returncode == 2 and "exobridge: error: empty prompt" in proc.stderr, proc.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "exobridge.cli.chat_run" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "click", "pydantic", "httpx", "sqlite3")}


def test_version_matches_the_package(cli, monkeypatch, capsys):
    from exobridge import __version__
    from exobridge.cli import main

    monkeypatch.setattr(sys, "argv", ["exobridge", "--version"])
    main()  # the console script answers --version itself, before Typer loads
    assert capsys.readouterr().out == f"exobridge {__version__}\n"
    result = cli("--version")  # and so does the app's --version option
    assert (result.exit_code, result.stdout) == (0, f"exobridge {__version__}\n")


# Tests that start a real exobridge process (`@pytest.mark.process`, enforced by tests/conftest.py's guard):
# only for what only a process shows. Today 35: 24 for commands (signals, pipes, /dev/full, a terminal, start-up
# imports, separate processes at once; the interactive session's pty runs among them) and 11 for serve and its
# dashboard. Lower this when one goes; raising it needs something only a process shows (issue 8).
PROCESS_TESTS_CEILING = 35


def marked_process_tests(request: pytest.FixtureRequest) -> list[str]:
    """Node ids of every test marked `process`: from this session when it collected the whole suite
    unfiltered (every xdist worker collects it all), else from a collection of its own."""
    config = request.config
    items = request.session.items
    collected = {Path(str(item.path)).name for item in items}
    whole = {path.name for path in (ROOT / "tests").glob("test_*.py")} <= collected
    if whole and not config.getoption("keyword") and not config.getoption("markexpr"):
        return [item.nodeid for item in items if item.get_closest_marker("process")]
    options = ["--collect-only", "-q", "-m", "process", "-p", "no:cacheprovider", "-p", "no:xdist", "-o", "addopts="]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *options, "tests"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_few_tests_start_a_real_process(request):
    found = marked_process_tests(request)
    assert found, "no test is marked process: the count is not being read"
    assert len(found) <= PROCESS_TESTS_CEILING, "\n".join(found)


def test_every_command_group_is_listed_and_reachable(cli):
    top = cli("--help")
    groups = ("chat", "providers", "models", "config", "keys", "doctor", "completions")
    assert top.exit_code == 0 and all(re.search(rf"^\s+{name}\s", top.stdout, re.M) for name in groups), top.stdout
    for name in groups:
        sub = cli(name, "--help")
        assert sub.exit_code == 0 and f"Usage: exobridge {name}" in sub.stdout, sub.stderr
    typo = cli("chatt")
    assert typo.exit_code == 2 and "No such command 'chatt'" in typo.stderr


def test_building_the_app_again_adds_no_command_twice():
    """Every in-process run (tests, completion then the run itself) builds the app anew: no group may collect
    its commands again, or each run gets slower than the last."""
    from exobridge.cli.app import COMMAND_MODULES, build_app

    def command_paths(app, prefix=()):
        found = [(*prefix, info.name or info.callback.__name__) for info in app.registered_commands]
        for group in app.registered_groups:
            found += command_paths(group.typer_instance, (*prefix, group.name))
        return found

    for args in [None, *([name] for name in COMMAND_MODULES)]:
        first = command_paths(build_app(args))
        assert command_paths(build_app(args)) == first and len(set(first)) == len(first), (args, first)


def module_level_imports() -> dict[str, set[str]]:
    """exobridge module -> the exobridge modules it imports when loaded (not inside functions or TYPE_CHECKING)."""
    package = ROOT / "exobridge"
    names = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for item in node.body if isinstance(node, ast.Try) else [node]:
                if isinstance(item, ast.Import):
                    found.update(alias.name for alias in item.names)
                elif isinstance(item, ast.ImportFrom):
                    base = item.module or ""
                    if item.level:
                        anchor = here.split(".")[: len(here.split(".")) - item.level + 1]
                        base = ".".join(anchor + ([item.module] if item.module else []))
                    for alias in item.names:
                        found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base)
        graph[name] = {m for m in found if m in names and not name.startswith(f"{m}.")}
    return graph


def test_no_import_cycles_between_modules():
    graph = module_level_imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
