"""`exobridge completions bash|zsh|fish`: shell completion scripts, and the answers behind them.

The scripts are package data (`exobridge/data/completions/`; `completions/` in the repository holds the same
files for packagers). A script runs `exobridge` with `_EXOBRIDGE_COMPLETE=complete_<shell>` and the line up to
the cursor in `_TYPER_COMPLETE_ARGS`; `respond()` answers it. Only public APIs are used: Typer's
`typer.main.get_command` builds the command tree, and the answer is read from that tree's public attributes
(`get_params`, `opts`, `list_commands`, `get_command`, `shell_complete`) — the `autocompletion=` hooks of the
commands give the values, so a new command or option is completed without being listed here. What differs
from Typer's stock completion, and why this module exists:

- answers carry a type (`plain`, `file`, `dir`) so a shell lists files only where a parameter takes a path
  (read from the command function's annotation), and nothing when there is nothing to offer;
- the line is not parsed by the command (that would coerce every value through Pydantic and cost twice
  `exobridge --help`); it is walked here: options and the values they take, `--`, then the word being typed;
- help texts are written as they are (Typer renders them with Rich, another import a TAB need not pay);
- bash gets the line up to the cursor, and the word as bash split it, so `openrouter:<TAB>` works although
  bash splits words at `:` and `=`.

`--show-completion` / `--install-completion` (root options, declared in cli/completion_hooks.py) print or install the
same scripts. `python -m exobridge.cli.completions --write` copies the scripts into `completions/`.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import pathlib
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

PROG_NAME = "exobridge"
COMPLETE_VAR = "_EXOBRIDGE_COMPLETE"
LINE_VAR = "_TYPER_COMPLETE_ARGS"
SCRIPT_FILES = {"bash": "exobridge.bash", "zsh": "_exobridge", "fish": "exobridge.fish"}


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def script(shell: str) -> str:
    """The completion script for `shell` (package data), as `exobridge completions SHELL` prints it."""
    from importlib.resources import files

    return (files("exobridge") / "data" / "completions" / SCRIPT_FILES[shell]).read_text(encoding="utf-8")


# --- reading the line ---------------------------------------------------------------------------------------


def split_line(line: str) -> tuple[list[str], str]:
    """`exobridge chat -m open` → (["chat", "-m"], "open"): the words before the cursor, and the word being
    completed ("" after a space). The program name is dropped. Unclosed quotes are tolerated."""
    import shlex  # only a TAB needs it, not every command that registers completion hooks

    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        words.extend(lexer)
    except ValueError:  # an unclosed quote: keep what was read, and the open word as it stands
        words.append(lexer.token)
    words = words[1:]
    if words and line and not line[-1].isspace():
        return words[:-1], words[-1]
    return words, ""


def option_prefix(word: str) -> str:
    """`--model=ll` → `--model=`: the part of the word a value is completed after (it is put back)."""
    if word.startswith("-") and "=" in word:
        return word.partition("=")[0] + "="
    return ""


# --- answering from the command tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One completion: `type` is plain (a value), file or dir (let the shell list paths)."""

    value: str
    type: str = "plain"
    help: str = ""


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _takes_value(param: Any) -> bool:
    return _is_option(param) and not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def _is_group(command: Any) -> bool:
    return callable(getattr(command, "list_commands", None)) and callable(getattr(command, "get_command", None))


def _context(command: Any, name: str, parent: Any = None) -> Any:
    return typer.Context(command, info_name=name, parent=parent, resilient_parsing=True)


def _option_names(command: Any, ctx: Any) -> dict[str, Any]:
    return {name: p for p in command.get_params(ctx) if _is_option(p) for name in (*p.opts, *p.secondary_opts)}


def _skip_options(words: list[str], options: dict[str, Any]) -> tuple[int, Any]:
    """Walk `words` as options and their values up to the first other word.

    Returns (index of the first non-option word or len(words), the option still waiting for its value).
    """
    index, pending = 0, None
    while index < len(words):
        word = words[index]
        if pending is not None:
            pending, index = None, index + 1
            continue
        if word == "--" or not word.startswith("-") or word == "-":
            return index, None
        pending = _value_option(word, options)
        index += 1
    return index, pending


def _value_option(word: str, options: dict[str, Any]) -> Any:
    """The option `word` names when its value is the NEXT word (not `--x=v`, not `-xv`), else None."""
    if word.startswith("--"):
        if "=" in word:
            return None
        param = options.get(word)
    else:
        param = options.get(word[:2])
        if len(word) > 2:
            return None
    return param if param is not None and _takes_value(param) else None


def resolve(root: Any, words: list[str]) -> tuple[Any, Any, list[str]] | None:
    """Follow `words` down the command tree: (the command being typed, its context, the words after it).

    None when a word names no command (nothing is offered then).
    """
    command, ctx = root, _context(root, PROG_NAME)
    rest = list(words)
    while _is_group(command):
        index, pending = _skip_options(rest, _option_names(command, ctx))
        if pending is not None or index >= len(rest) or rest[index] == "--":
            return command, ctx, rest
        name = rest[index]
        sub = command.get_command(ctx, name)
        if sub is None:
            return None
        command, ctx, rest = sub, _context(sub, name, ctx), rest[index + 1 :]
    return command, ctx, rest


def path_kind(command: Any, param: Any) -> str | None:
    """ "file" or "dir" when the command function declares `param` as a pathlib.Path, else None."""
    callback = getattr(command, "callback", None)
    if callback is None:
        return None
    function = inspect.unwrap(callback)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
        default = inspect.signature(function).parameters[param.name].default
    except Exception:
        return None
    annotation = hints.get(param.name)
    infos = [default]
    if typing.get_origin(annotation) is Annotated:
        annotation, *metadata = typing.get_args(annotation)
        infos += metadata
    kinds = [annotation, *typing.get_args(annotation)]
    if not any(isinstance(k, type) and issubclass(k, pathlib.PurePath) for k in kinds):
        return None
    dir_only = any(getattr(i, "file_okay", True) is False for i in infos)
    return "dir" if dir_only else "file"


def _values(command: Any, ctx: Any, param: Any, incomplete: str) -> list[Answer]:
    """What the parameter's own completion offers (its `autocompletion=` hook, choices), or the shell's files."""
    answers = [
        Answer(str(item.value), str(getattr(item, "type", "plain") or "plain"), str(getattr(item, "help", "") or ""))
        for item in param.shell_complete(ctx, incomplete)
    ]
    if not answers:
        kind = path_kind(command, param)
        if kind is not None:
            answers = [Answer(incomplete, kind)]
    return answers


def _first_line(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


def answers(root: Any, words: list[str], incomplete: str) -> list[Answer]:
    """The completions of `incomplete` after `words` (the line without the program name)."""
    found = resolve(root, words)
    if found is None:
        return []
    command, ctx, rest = found
    params = command.get_params(ctx)
    options = _option_names(command, ctx)
    used: set[str] = set()
    positional, pending, after_dashes = 0, None, False
    for word in rest:
        if pending is not None:
            pending = None
        elif after_dashes or not word.startswith("-") or word == "-":
            positional += 1
        elif word == "--":
            after_dashes = True
        else:
            named = options.get(word.partition("=")[0] if word.startswith("--") else word[:2])
            if named is not None:
                used.add(named.name)
            pending = _value_option(word, options)
    if pending is not None:
        return _values(command, ctx, pending, incomplete)
    if not after_dashes and incomplete.startswith("-"):
        name, equals, value = incomplete.partition("=")
        if equals and name.startswith("--") and name in options and _takes_value(options[name]):
            return _values(command, ctx, options[name], value)
        return [
            Answer(opt, help=_first_line(p.help))
            for p in params
            if _is_option(p) and not p.hidden and (p.multiple or p.name not in used)
            for opt in (*p.opts, *p.secondary_opts)
            if opt.startswith(incomplete)
        ]
    if _is_group(command):
        listed = []
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden and name.startswith(incomplete):
                listed.append(Answer(name, help=_first_line(sub.get_short_help_str())))
        return listed
    for param in params:
        if getattr(param, "param_type_name", "") != "argument":
            continue
        if param.nargs == -1 or positional < max(param.nargs, 1):
            return _values(command, ctx, param, incomplete)
        positional -= max(param.nargs, 1)
    return []


# --- formatting for each shell ------------------------------------------------------------------------------


def _full_value(answer: Answer, word: str) -> str:
    return option_prefix(word) + answer.value if answer.type == "plain" else answer.value


def format_bash(found: list[Answer], word: str, bash_word: str | None) -> str:
    """`type,value` lines. Bash replaces only its own last word, which starts after the last `:` or `=`."""
    cut = len(word) - len(bash_word) if bash_word is not None and word.endswith(bash_word) else 0
    lines = []
    for answer in found:
        value = _full_value(answer, word)
        if answer.type == "plain":
            if not value.startswith(word[:cut]):
                continue
            value = value[cut:]
        lines.append(f"{answer.type},{value}")
    return "\n".join(lines)


def format_zsh(found: list[Answer], word: str) -> str:
    """Triples of lines: type, value, help (`_` for none)."""
    return "\n".join(f"{a.type}\n{_full_value(a, word)}\n{' '.join(a.help.split()) or '_'}" for a in found)


def format_fish(found: list[Answer], word: str) -> str:
    """`type,value` lines, with `\\thelp` when there is help."""
    lines = []
    for answer in found:
        help_text = " ".join(answer.help.split())
        value = _full_value(answer, word)
        lines.append(f"{answer.type},{value}\t{help_text}" if help_text else f"{answer.type},{value}")
    return "\n".join(lines)


AppSource = typer.Typer | Callable[[list[str]], typer.Typer]


def complete(app: AppSource, shell: str, line: str, bash_word: str | None = None) -> str:
    """The answer a shell script reads for `line` (without the trailing newline).

    `app` is the Typer app, or a function building the app for a list of words (cli.app's `build_app`, which
    builds only the group the words start with).
    """
    from typer.main import get_command

    words, word = split_line(line)
    tree = app if isinstance(app, typer.Typer) else app(words)
    found = answers(get_command(tree), words, word)
    if shell == "bash":
        return format_bash(found, word, bash_word)
    if shell == "zsh":
        return format_zsh(found, word)
    return format_fish(found, word)


def respond(app: AppSource) -> bool:
    """Answer a completion request (`_EXOBRIDGE_COMPLETE=complete_<shell>` or `source_<shell>`).

    Returns False only when no completion was asked for. A request for another shell (PowerShell, tcsh) or
    action gets an empty answer: completion never runs a command or prints help. Never fails loudly: on any
    error the answer is empty and nothing reaches stderr.
    """
    request = os.environ.get(COMPLETE_VAR, "")
    if not request:
        return False
    action, _, shell = request.partition("_")
    out = ""
    if shell not in SCRIPT_FILES or action not in ("complete", "source"):
        return True
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            if action == "source":
                out = script(shell)
            else:
                line = os.environ.get(LINE_VAR, "")
                out = complete(app, shell, line, os.environ.get(f"{COMPLETE_VAR}_WORD"))
                out = f"{out}\n" if out else ""
    except BaseException:
        out = ""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(out)
        sys.stdout.flush()
    return True


# --- installing: `--show-completion` / `--install-completion` -----------------------------------------------


def detect_shell() -> str | None:
    """The user's shell (bash, zsh or fish): the parent process when it can be told, else $SHELL."""
    with contextlib.suppress(Exception):
        import shellingham

        name, _ = shellingham.detect_shell()
        if name in SCRIPT_FILES:
            return str(name)
    name = Path(os.environ.get("SHELL", "")).name
    return name if name in SCRIPT_FILES else None


def install(shell: str, home: Path | None = None) -> Path:
    """Write the script where `shell` loads it and, for bash and zsh, make the rc file load it. Returns the
    script's path. The rc file is edited only when it does not already have the line."""
    home = Path.home() if home is None else home
    rc: Path | None = None
    line = ""
    if shell == "bash":
        target, rc = home / ".bash_completions" / "exobridge.sh", home / ".bashrc"
        line = f"source '{target}'"
    elif shell == "zsh":
        target, rc = home / ".zfunc" / "_exobridge", home / ".zshrc"
        line = "fpath+=~/.zfunc; autoload -Uz compinit; compinit"
    else:
        config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
        target = config_home / "fish" / "completions" / "exobridge.fish"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(script(shell), encoding="utf-8")
    if rc is not None:
        current = rc.read_text(encoding="utf-8") if rc.exists() else ""
        if line not in current:
            with rc.open("a", encoding="utf-8") as out:
                out.write(("" if not current or current.endswith("\n") else "\n") + line + "\n")
    return target


def _detected_shell() -> str:
    shell = detect_shell()
    if shell is None:
        raise typer.BadParameter(
            "cannot tell your shell: use exobridge completions bash|zsh|fish (docs/completions.md)"
        )
    return shell


def show_completion_callback(value: bool) -> None:
    if not value:
        return
    sys.stdout.write(script(_detected_shell()))
    raise typer.Exit(0)


def install_completion_callback(value: bool) -> None:
    if not value:
        return
    shell = _detected_shell()
    target = install(shell)
    sys.stdout.write(f"{shell} completion installed in {target}\nopen a new shell to use it\n")
    raise typer.Exit(0)


# --- the command and the generator -------------------------------------------------------------------------


def completions(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the completion script for SHELL (install: see docs/completions.md)."""
    sys.stdout.write(script(shell.value))


def register(root: typer.Typer) -> None:
    """Add the `completions` command."""
    root.command("completions")(completions)


def write_scripts(directory: Path) -> list[Path]:
    """Write the three scripts into `directory`; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for shell, name in SCRIPT_FILES.items():
        path = directory / name
        path.write_text(script(shell), encoding="utf-8")
        written.append(path)
    return written


def _generator(argv: list[str]) -> int:
    """`python -m exobridge.cli.completions --write [DIR]` (default: `completions/` in the repo)."""
    if not argv or argv[0] != "--write":
        sys.stderr.write("usage: python -m exobridge.cli.completions --write [DIR]\n")
        return 2
    directory = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "completions"
    for path in write_scripts(directory):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(_generator(sys.argv[1:]))
