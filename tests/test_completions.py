"""Shell completion: the values (unit), the answers (in-process, through `respond`), the scripts and their
install, and the committed scripts in real shells.

The shell tests source `completions/*` in real bash, zsh and fish processes and ask for completions the way
each shell does; they skip when a shell is not installed (CI installs all three via .ci/run).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exobridge.cli import completions
from exobridge.core import completion_values as values
from exobridge.core.cache import JsonCache
from exobridge.core.config import load
from tests.conftest import STAND_IN_MARK

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "completions"

CONFIG = """\
default_model = "llama-3.2-3b"

[providers.exo]
url = "http://127.0.0.1:9"

[providers.openrouter]
url = "http://127.0.0.1:9/api/v1"

[providers.huggingface]
enabled = false

[providers.lab]
kind = "openai"
url = "http://127.0.0.1:9/v1"
priority = 5

[models.house-model]
lab = "org/house-model"
"""

OPENROUTER_IDS = ["meta-llama/llama-3.3-70b-instruct", "openai/gpt-4o", "qwen/qwen3-32b:free"]


@pytest.fixture
def configured(write_config) -> Path:
    """The test config, and a model-list cache seeded as `exobridge models` writes it."""
    write_config(CONFIG)
    cache = JsonCache("models")
    cache.put("openrouter", [{"id": model_id, "name": model_id.upper()} for model_id in OPENROUTER_IDS])
    cache.put("exo", [{"id": "mlx-community/Llama-3.2-1B-Instruct-4bit"}, {"name": "no id"}, "junk"])
    cache.put("gone", [{"id": "not/configured"}])
    return cache.path


def names(candidates: list[tuple[str, str]]) -> list[str]:
    return [value for value, _ in candidates]


# --- values (pure core) ------------------------------------------------------------------------------------


def test_provider_names_follow_priority_and_prefix(configured: Path) -> None:
    assert names(values.provider_names()) == ["exo", "openrouter", "huggingface", "lab"]
    assert names(values.provider_names("o")) == ["openrouter"]
    assert dict(values.provider_names())["huggingface"] == "huggingface provider, disabled"


def test_model_names_without_prefix_offer_table_and_provider_prefixes(configured: Path) -> None:
    offered = names(values.model_names(""))
    assert "llama-3.2-3b" in offered and "house-model" in offered  # built-in and [models] of the config
    assert {"exo:", "openrouter:", "huggingface:", "lab:"} <= set(offered)
    assert "openai/gpt-4o" not in offered  # cached ids wait for a first character
    assert names(values.model_names("open")) == ["openrouter:", "openai/gpt-4o"]
    assert names(values.model_names("mlx-")) == ["mlx-community/Llama-3.2-1B-Instruct-4bit"]
    assert "not/configured" not in names(values.model_names("n"))


def test_model_names_with_provider_prefix(configured: Path) -> None:
    offered = names(values.model_names("openrouter:"))
    assert {f"openrouter:{model_id}" for model_id in OPENROUTER_IDS} <= set(offered)
    assert "openrouter:llama-3.2-3b" in offered
    assert "openrouter:qwen-2.5-1.5b" not in offered  # the table has no OpenRouter id for it
    assert names(values.model_names("openrouter:qwen/")) == ["openrouter:qwen/qwen3-32b:free"]
    assert names(values.model_names("lab:")) == ["lab:house-model"]
    assert names(values.model_names("nowhere:")) == []


def test_config_keys(configured: Path) -> None:
    keys = names(values.config_keys())
    assert keys[0] == "default_model"
    assert "providers.lab.url" in keys and "providers.exo.priority" in keys
    assert names(values.config_keys("providers.lab.k")) == ["providers.lab.key_env", "providers.lab.kind"]


def test_broken_config_gives_nothing(write_config) -> None:
    write_config("[providers.exo\nurl = ")
    assert values.provider_names() == []
    assert values.model_names("") == []
    assert values.model_names("openrouter:") == []
    assert values.config_keys() == []


def test_unreadable_cache_still_offers_the_table(configured: Path) -> None:
    configured.write_text("{not json", encoding="utf-8")
    assert "llama-3.2-3b" in names(values.model_names("llama"))
    assert values.cached_model_ids(load()) == {}
    configured.unlink()
    configured.mkdir()
    assert names(values.model_names("openrouter:meta-llama/")) == []


def test_cached_ids_a_shell_cannot_take_are_skipped(configured: Path) -> None:
    JsonCache("models").put(
        "openrouter", [{"id": "evil\x1b]0;title\x07"}, {"id": "two words"}, {"id": "ok/model"}, {"id": ""}]
    )
    assert values.cached_model_ids(load())["openrouter"] == ["ok/model"]


def test_a_cache_file_another_user_could_write_is_not_read(configured: Path) -> None:
    assert "openai/gpt-4o" in values.cached_model_ids(load())["openrouter"]
    configured.chmod(0o666)
    assert values.cached_model_ids(load()) == {}
    configured.chmod(0o600)
    configured.parent.chmod(0o777)
    try:
        assert values.cached_model_ids(load()) == {}
    finally:
        configured.parent.chmod(0o700)


def test_split_line_and_option_prefix() -> None:
    assert completions.split_line("exobridge chat -m open") == (["chat", "-m"], "open")
    assert completions.split_line("exobridge chat -m ") == (["chat", "-m"], "")
    assert completions.split_line('exobridge chat "half') == (["chat"], "half")
    assert completions.split_line("exobridge chat 'two words' -") == (["chat", "two words"], "-")
    assert completions.split_line("") == ([], "")
    assert completions.option_prefix("--model=ll") == "--model="
    assert completions.option_prefix("open") == ""


# --- the answer, in-process (what the scripts read) ----------------------------------------------------------


def answer(
    shell: str, line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **extra: str
) -> str:
    """What `exobridge` prints for a completion request, run in this process through `respond`."""
    from exobridge.cli.app import build_app

    monkeypatch.setenv(completions.COMPLETE_VAR, f"complete_{shell}")
    monkeypatch.setenv(completions.LINE_VAR, line)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert completions.respond(build_app) is True
    out, err = capsys.readouterr()
    assert err == ""
    return out


@pytest.fixture
def ask(configured: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """`ask(line)`: the values fish would get (bash and zsh format the same answers differently)."""

    def run(line: str, shell: str = "fish") -> list[str]:
        out = answer(shell, line, monkeypatch, capsys)
        return [entry.split("\t")[0].partition(",")[2] for entry in out.splitlines()]

    return run


def test_commands_options_and_values(ask) -> None:
    assert {"chat", "completions", "providers", "doctor"} <= set(ask("exobridge "))
    assert ask("exobridge ch") == ["chat"]
    assert ask("exobridge providers re") == ["reset", "remove"] or set(ask("exobridge providers re")) == {
        "reset",
        "remove",
    }
    assert {"--model", "--provider", "--no-fallback", "--json"} <= set(ask("exobridge chat --"))
    assert ask("exobridge chat --mo") == ["--model"]
    assert ask("exobridge --ver") == ["--version"]
    assert sorted(ask("exobridge chat -p ")) == ["exo", "huggingface", "lab", "openrouter"]
    assert ask("exobridge chat -p lab --provider e") == ["exo"]  # --provider repeats: offered again
    assert "--model" not in ask("exobridge chat -m house --")  # given once: not offered again
    assert ask("exobridge chat --model=house") == ["--model=house-model"]
    assert ask("exobridge chat -m openrouter:qwen/") == ["openrouter:qwen/qwen3-32b:free"]
    assert ask("exobridge completions ") == ["bash", "zsh", "fish"]
    assert ask("exobridge config get providers.lab.ur") == ["providers.lab.url", "providers.lab.urls"]


def test_words_after_a_double_dash_and_unknown_commands_get_nothing(ask) -> None:
    assert ask("exobridge chat -- --") == []
    assert ask("exobridge nosuchcommand --") == []
    assert ask("exobridge chat hello ") == []  # the one argument is given; nothing else is positional


def test_path_parameters_ask_the_shell_for_files_and_nothing_else_does(
    configured: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for shell in ("bash", "zsh", "fish"):
        for line in ("exobridge config import-legacy ", "exobridge config import-legacy --key-file "):
            out = answer(shell, line, monkeypatch, capsys)
            assert out.replace("\n", ",").split(",")[0] == "file", (shell, line)
        assert "file" not in answer(shell, "exobridge chat -m zzz", monkeypatch, capsys)
    assert answer("fish", "exobridge config import-legacy --key-file=old", monkeypatch, capsys) == "file,old\n"


def test_bash_gets_only_the_part_after_its_last_word_break(
    configured: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = answer("bash", "exobridge chat -m openrouter:qwen/", monkeypatch, capsys, _EXOBRIDGE_COMPLETE_WORD="qwen/")
    assert out == "plain,qwen/qwen3-32b:free\n"
    zsh = answer("zsh", "exobridge chat -p op", monkeypatch, capsys)
    assert zsh == "plain\nopenrouter\nopenrouter provider\n"


def test_a_source_request_prints_the_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exobridge.cli.app import build_app

    monkeypatch.setenv(completions.COMPLETE_VAR, "source_zsh")
    assert completions.respond(build_app) is True
    assert capsys.readouterr().out == completions.script("zsh")
    for unsupported in ("complete_powershell", "source_tcsh", "bash_source"):  # an empty answer, never a command
        monkeypatch.setenv(completions.COMPLETE_VAR, unsupported)
        assert completions.respond(build_app) is True
        assert capsys.readouterr() == ("", "")
    monkeypatch.delenv(completions.COMPLETE_VAR)
    assert completions.respond(build_app) is False


def test_a_new_provider_kind_is_completed_like_the_others(
    write_config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exobridge.core import providers
    from exobridge.core.providers.base import ProviderKind

    @providers.register
    class Llamafile(ProviderKind):
        name = "llamafile-test"
        label = "llamafile"
        default_url = "http://127.0.0.1:9/v1"

    try:
        write_config('[providers.laptop]\nkind = "llamafile-test"\nurl = "http://127.0.0.1:9/v1"\n')
        out = answer("fish", "exobridge chat -p lap", monkeypatch, capsys)
        assert out == "plain,laptop\tllamafile-test provider\n"
        assert "plain,laptop:" in answer("fish", "exobridge chat -m lap", monkeypatch, capsys)
    finally:
        providers.unregister("llamafile-test")


# --- committed scripts and installing ------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_committed_script_is_the_package_data(shell: str, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(completions, "detect_shell", lambda: shell)
    committed = (SCRIPTS / completions.SCRIPT_FILES[shell]).read_text(encoding="utf-8")
    assert committed == completions.script(shell), "run: python -m exobridge.cli.completions --write"
    printed = cli("completions", shell)
    assert printed.exit_code == 0 and printed.stdout == committed
    shown = cli("--show-completion")
    assert (shown.exit_code, shown.stdout) == (0, committed)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_install_writes_the_script_where_the_shell_loads_it(shell: str, tmp_path: Path) -> None:
    target = completions.install(shell, home=tmp_path)
    assert target.read_text(encoding="utf-8") == completions.script(shell)
    completions.install(shell, home=tmp_path)  # twice: the rc line is not repeated
    rc = {"bash": tmp_path / ".bashrc", "zsh": tmp_path / ".zshrc", "fish": None}[shell]
    if rc is not None:
        text = rc.read_text(encoding="utf-8")
        assert len(text.splitlines()) == 1
        assert (f"source '{target}'" if shell == "bash" else "fpath+=~/.zfunc") in text


def test_install_completion_option(cli, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(completions, "detect_shell", lambda: "bash")
    done = cli("--install-completion")
    assert done.exit_code == 0, done.stderr
    installed = isolated / "home" / ".bash_completions" / "exobridge.sh"
    assert installed.read_text(encoding="utf-8") == completions.script("bash")
    assert f"source '{installed}'" in (isolated / "home" / ".bashrc").read_text(encoding="utf-8")
    assert f"installed in {installed}" in done.stdout


def test_completions_rejects_unknown_shell(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("completions", "tcsh")
    assert result.exit_code == 2 and "tcsh" in result.stderr
    monkeypatch.setattr(completions, "detect_shell", lambda: None)
    unknown = cli("--show-completion")
    assert unknown.exit_code == 2 and "exobridge completions bash|zsh|fish" in unknown.stderr


def test_the_shell_is_detected_from_the_process_or_shell_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    import shellingham

    def fail() -> None:
        raise shellingham.ShellDetectionFailure()

    monkeypatch.setattr(shellingham, "detect_shell", fail)
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    assert completions.detect_shell() == "zsh"
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    assert completions.detect_shell() is None
    monkeypatch.setattr(shellingham, "detect_shell", lambda: ("fish", "/usr/bin/fish"))
    assert completions.detect_shell() == "fish"


def test_only_public_typer_and_click_apis_are_used() -> None:
    """Typer's private modules change without notice (0.15 broke TAB completion silently)."""
    private = re.compile(
        r"typer\._|click\._|_completion_classes|_completion_shared|_TyperParameter|registered_commands\s*="
    )
    package = Path(completions.__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []


# --- the protocol, as a process (what only a process shows) ---------------------------------------------------


def shell_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


STAND_IN_SCRIPT = r"""#!/bin/sh
# exobridge-test-stand-in (tests/conftest.py STAND_IN_MARK: the process guard does not count this one)
# `exobridge` for the shell tests: hands its arguments and completion request to the test process, which
# answers in-process (tests/test_completions.py, StandIn); prints that answer and exits with its code.
printf '%s\0' "${_EXOBRIDGE_COMPLETE-}" "${_TYPER_COMPLETE_ARGS-}" "${_EXOBRIDGE_COMPLETE_WORD+set}" \
    "${_EXOBRIDGE_COMPLETE_WORD-}" "$@" > "$EXB_STAND_IN/request"
{ read -r code; cat; } < "$EXB_STAND_IN/reply"
cat "$EXB_STAND_IN/stderr" >&2
exit "$code"
"""


class StandIn:
    """An `exobridge` first on the shells' PATH that forwards each call to this process over two FIFOs.

    The shells run for real (their scripts, word breaks, redirections); the answer is the one the installed
    command gives, computed here the way `exobridge.cli.app.main` does: a completion request through
    `completions.respond`, anything else through the runner. One real `python -m exobridge` TAB is
    test_completion_imports_no_network_rich_or_pydantic_code's.
    """

    def __init__(self, directory: Path) -> None:
        import threading

        self.dir = directory
        (directory / "bin").mkdir(parents=True)
        stub = directory / "bin" / "exobridge"
        assert STAND_IN_MARK in STAND_IN_SCRIPT
        stub.write_text(STAND_IN_SCRIPT, encoding="utf-8")
        stub.chmod(0o755)
        for fifo in ("request", "reply"):
            os.mkfifo(directory / fifo)
        self.calls: list[list[str]] = []
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        env = shell_env()
        env["PATH"] = f"{self.dir / 'bin'}{os.pathsep}{env['PATH']}"
        env["EXB_STAND_IN"] = str(self.dir)
        return env

    def _serve(self) -> None:
        while True:
            try:
                with open(self.dir / "request", "rb") as request:
                    data = request.read()
                if self._closing:
                    return
                fields = [os.fsdecode(field) for field in data.split(b"\0")[:-1]]
                code, out, err = self._answer(fields[0], fields[1], fields[3] if fields[2] else None, fields[4:])
                (self.dir / "stderr").write_text(err, encoding="utf-8")
                with open(self.dir / "reply", "w", encoding="utf-8") as reply:
                    reply.write(f"{code}\n{out}")
            except OSError:  # the shell went away mid-call
                return

    def _answer(self, request: str, line: str, word: str | None, args: list[str]) -> tuple[int, str, str]:
        import io
        import traceback

        from exobridge.cli.app import build_app
        from exobridge.cli.runner import invoke

        self.calls.append(args)
        try:
            if request:
                names = {completions.COMPLETE_VAR: request, completions.LINE_VAR: line}
                names[f"{completions.COMPLETE_VAR}_WORD"] = word  # type: ignore[assignment]
                saved = {name: os.environ.get(name) for name in names}
                out = io.StringIO()
                try:
                    for name, value in names.items():
                        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
                    with contextlib.redirect_stdout(out):
                        assert completions.respond(build_app) is True
                finally:
                    for name, value in saved.items():
                        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
                return 0, out.getvalue(), ""
            result = invoke(args)
            return result.exit_code, result.stdout, result.stderr
        except BaseException:
            return 1, "", traceback.format_exc()

    def close(self) -> None:
        """Stop the forwarding thread (a writer that opens and closes the request FIFO wakes it)."""
        self._closing = True
        with contextlib.suppress(OSError):  # ENXIO: the thread is not waiting for a request
            os.close(os.open(self.dir / "request", os.O_WRONLY | os.O_NONBLOCK))
        self._thread.join(timeout=5)


@pytest.fixture
def stand_in(tmp_path: Path):
    made = StandIn(tmp_path / "stand-in")
    yield made
    made.close()


def test_broken_config_answers_nothing_and_prints_nothing(
    write_config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config("default_model = [\n")
    for shell in ("bash", "zsh", "fish"):
        for line in ("exobridge chat -p ", "exobridge chat -m ", "exobridge chat -m openrouter:"):
            assert answer(shell, line, monkeypatch, capsys) == "", (shell, line)


def imported_modules(argv: list[str], env: dict[str, str]) -> tuple[set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True, timeout=10
    )
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}, proc.stdout


@pytest.mark.process  # start-up: one real TAB, `python -m exobridge`, and what a fresh interpreter imports
def test_completion_imports_no_network_rich_or_pydantic_code(configured: Path) -> None:
    """Beyond what `import typer` itself costs (older Typers import Rich eagerly), a TAB imports none of them."""
    env = dict(shell_env(), _EXOBRIDGE_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="exobridge chat -m openrouter:")
    imported, out = imported_modules(["-m", "exobridge"], env)
    assert "openrouter:openai/gpt-4o" in out
    typer_alone, _ = imported_modules(["-c", "import typer"], env)
    heavy = {"httpx", "rich", "pydantic", "httpcore", "ssl"}
    assert not {m for m in imported - typer_alone if m.split(".")[0] in heavy}


# --- real shells -----------------------------------------------------------------------------------------------


def need(shell: str) -> str:
    found = shutil.which(shell)
    if not found:
        pytest.skip(f"{shell} is not installed (CI installs bash, zsh and fish in .ci/run)")
    return found


def run_shell(argv: list[str], script: str, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([*argv, script], env=env, capture_output=True, text=True, timeout=10, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def sh_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def bash_words(line: str) -> list[str]:
    """COMP_WORDS as readline makes them: words at blanks, and runs of `:` / `=` as words of their own."""
    words = [part for chunk in line.split() for part in re.findall(r"[=:]+|[^=:]+", chunk)]
    if not line or line[-1].isspace():
        words.append("")
    return words


READLINE_BREAKS = " \t\n\"'@><=;|&(:"  # bash's default COMP_WORDBREAKS


def bash_complete(line: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """The words bash would put on the line: each COMPREPLY entry replaces what readline takes as the word,
    the text after the last word-break character (not COMP_WORDS' last word, which may be `:` or `=`)."""
    bash = need("bash")
    words = bash_words(line)
    script = "\n".join(
        [
            f"source {sh_quote(str(SCRIPTS / 'exobridge.bash'))}",
            f"COMP_WORDS=({' '.join(sh_quote(w) for w in words)})",
            f"COMP_CWORD={len(words) - 1}",
            f"COMP_LINE={sh_quote(line)}",
            "COMP_POINT=${#COMP_LINE}",
            "_exobridge_completion exobridge",
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ]
    )
    out = run_shell([bash, "--norc", "--noprofile", "-c"], script, cwd, env)
    head = line[: max(line.rfind(char) for char in READLINE_BREAKS) + 1]
    return [(head + reply).split()[-1] for reply in out.splitlines() if reply]


def fish_complete(line: str, cwd: Path, env: dict[str, str]) -> list[str]:
    fish = need("fish")
    script = f"source {sh_quote(str(SCRIPTS / 'exobridge.fish'))}; complete -C {sh_quote(line)}"
    out = run_shell([fish, "--no-config", "-c"], script, cwd, env)
    return [entry.split("\t")[0] for entry in out.splitlines() if entry]


ZSH_HARNESS = r"""
compdef() { : }
compadd() { print -rl -- "${(@P)${@[-1]}}" }
_describe() { local item; for item in "${(@P)3}"; do print -r -- "described:$item"; done }
_path_files() { print -r -- "<files>" }
source %s
words=(%s)
CURRENT=${#words}
_exobridge_completion
"""


def zsh_complete(line: str, cwd: Path, env: dict[str, str]) -> list[str]:
    """Drive `_exobridge_completion` with zsh's `words`/`CURRENT`; capture what it hands compadd/_describe."""
    zsh = need("zsh")
    words = line.split() + ([""] if line[-1].isspace() else [])
    script = ZSH_HARNESS % (sh_quote(str(SCRIPTS / "_exobridge")), " ".join(sh_quote(w) for w in words))
    result = []
    for entry in run_shell([zsh, "-f", "-c"], script, cwd, env).splitlines():
        if entry.startswith("described:"):  # `value:help`, colons in the value escaped as `\:`
            entry = re.split(r"(?<!\\):", entry.removeprefix("described:"), maxsplit=1)[0].replace("\\:", ":")
        if entry:
            result.append(entry)
    return result


COMPLETERS = {"bash": bash_complete, "zsh": zsh_complete, "fish": fish_complete}


@pytest.fixture(params=["bash", "zsh", "fish"])
def complete(request, configured: Path, tmp_path: Path, stand_in: StandIn):
    completer = COMPLETERS[request.param]
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    (workdir / "a-file.txt").write_text("x", encoding="utf-8")  # file fallback would show it
    return lambda line: completer(line, workdir, stand_in.env())


# Each line is one TAB in a real shell (a shell process each, its `exobridge` the stand-in): the answers
# themselves are tested in-process above; these hold what only the shells show: word breaks at `:` and `=`,
# zsh's descriptions, the option kept in front.
SHELL_LINES = [
    ("exobridge ch", ["chat"]),
    ("exobridge chat --mo", ["--model"]),
    ("exobridge chat -p lab --provider e", ["exo"]),
    ("exobridge chat -m openrouter:qwen/qwen3-32b:", ["openrouter:qwen/qwen3-32b:free"]),
    ("exobridge chat --model=house", ["--model=house-model"]),
    ("exobridge config get providers.lab.ur", ["providers.lab.url", "providers.lab.urls"]),
]


def test_shell_completes_what_the_answer_offers(complete, write_config) -> None:
    for line, expected in SHELL_LINES:
        assert complete(line) == expected, line
    assert {"openrouter:", "openai/gpt-4o"} == set(complete("exobridge chat -m open"))
    write_config("[providers\n")  # broken: nothing from the config, and nothing on the terminal
    assert complete("exobridge chat -p ") == []
    assert complete("exobridge chat --") != []  # options come from the command tree, not the config


def test_shell_completes_files_for_path_arguments(configured: Path, tmp_path: Path, stand_in: StandIn) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    (workdir / "old-config.json").write_text("{}", encoding="utf-8")
    env = stand_in.env()
    assert fish_complete("exobridge config import-legacy old-", workdir, env) == ["old-config.json"]
    assert fish_complete("exobridge config import-legacy --key-file=old-", workdir, env) == [
        "--key-file=old-config.json"
    ]
    assert zsh_complete("exobridge config import-legacy --key-file ", workdir, env) == ["<files>"]


def test_completion_never_touches_the_network(
    server, write_config, cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every provider on one recording loopback server: TABs of all kinds in all shells reach it zero times."""
    srv = server()
    write_config(CONFIG.replace("http://127.0.0.1:9", srv.url).replace("enabled = false", f'url = "{srv.url}/hf"'))
    JsonCache("models").put("openrouter", [{"id": model_id} for model_id in OPENROUTER_IDS])
    lines = [
        "exobridge chat -p ",
        "exobridge chat -m ",
        "exobridge chat -m open",
        "exobridge chat -m openrouter:",
        "exobridge chat -m lab:",
        "exobridge chat -m exo:",
        "exobridge models -p ",
        "exobridge providers status --",
        "exobridge keys set ",
        "exobridge config set providers.",
    ]
    for shell in ("bash", "zsh", "fish"):
        for line in lines:
            assert answer(shell, line, monkeypatch, capsys), (shell, line)
    assert srv.requests == []
    cli("models", "--refresh", "-p", "lab")  # the control: a real command does reach the server
    assert "GET /v1/models" in srv.paths()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_documented_install_line_works_in_a_fresh_home(shell: str, tmp_path: Path, stand_in: StandIn) -> None:
    """The one-line install of docs/completions.md, run by that shell in an empty HOME, writes the script."""
    binary = need(shell)
    docs = (ROOT / "docs" / "completions.md").read_text(encoding="utf-8")
    line = re.search(rf"^\| {shell} +\| `(.+)` \|$", docs, re.MULTILINE)
    assert line, f"no install line for {shell} in docs/completions.md"
    command = line.group(1)
    env = {k: v for k, v in stand_in.env().items() if not k.startswith("XDG_")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run([binary, "-c", command], env=env, capture_output=True, text=True, timeout=10, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert stand_in.calls == [["completions", shell]]  # the line ran `exobridge completions SHELL`
    target = Path(command.rpartition("> ")[2].replace("~", str(tmp_path), 1))
    assert target.read_text(encoding="utf-8") == (SCRIPTS / completions.SCRIPT_FILES[shell]).read_text(encoding="utf-8")


def test_ids_listed_by_exobridge_models_are_completed(
    server, write_config, cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cache contract end to end: what `exobridge models` writes is what a TAB reads."""
    srv = server()

    @srv.route("GET", "/v1/models")
    def listed(exchange) -> None:
        exchange.reply(200, {"object": "list", "data": [{"id": "org/listed-one"}, {"id": "org/listed-two"}]})

    write_config(CONFIG.replace("http://127.0.0.1:9/v1", f"{srv.url}/v1"))
    assert answer("fish", "exobridge chat -m lab:org", monkeypatch, capsys) == ""
    assert cli("models", "--refresh", "-p", "lab").exit_code == 0
    out = answer("fish", "exobridge chat -m lab:org", monkeypatch, capsys)
    assert [line.split("\t")[0] for line in out.splitlines()] == [
        "plain,lab:org/listed-one",
        "plain,lab:org/listed-two",
    ]


WORDS = ["chat", "config", "get", "set", "providers", "keys", "-m", "--model", "--model=", "-p", "--", "-", "x"]


@functools.cache
def whole_tree() -> object:
    from typer.main import get_command

    from exobridge.cli.app import build_app

    return get_command(build_app())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(st.sampled_from(WORDS) | st.text(alphabet="ab:=-'\" ", max_size=6), max_size=5),
    shell=st.sampled_from(["bash", "zsh", "fish"]),
)
def test_any_line_gets_a_well_formed_answer_and_never_an_error(configured: Path, words: list[str], shell: str):
    """Whatever is on the line (odd quotes, `=`, `--`, unknown words), the answer is lines the script can read."""
    before, word = completions.split_line(" ".join(["exobridge", *words]))
    found = completions.answers(whole_tree(), before, word)
    if shell == "bash":
        out = completions.format_bash(found, word, None)
    else:
        out = completions.format_zsh(found, word) if shell == "zsh" else completions.format_fish(found, word)
    lines = out.splitlines()
    if shell == "zsh":
        assert len(lines) % 3 == 0 and all(t in ("plain", "file", "dir") for t in lines[::3])
    else:
        assert all(line.split(",", 1)[0] in ("plain", "file", "dir") for line in lines)


def test_completions_never_imports_the_app_module() -> None:
    """cli/app imports cli/completions (root options, the answer); the reverse would be a cycle."""
    source = Path(completions.__file__).read_text(encoding="utf-8")
    assert "exobridge.cli.app" not in source and "from exobridge.cli import app" not in source
