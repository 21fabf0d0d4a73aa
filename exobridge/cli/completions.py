"""`exobridge completions bash|zsh|fish`: shell completion scripts, and the answers behind them.

The protocol is Typer's own: the script runs `exobridge` with `_EXOBRIDGE_COMPLETE=complete_<shell>` and the
command line in `_TYPER_COMPLETE_ARGS`; Typer/click walk the command tree and ask each parameter's
`autocompletion=` hook, so every command and option gets completions without being listed here. Three things
differ from Typer's stock scripts and answer classes, which is why subclasses are used:

- answers carry a type (`plain`, `file`, `dir`) so a shell lists files only where a parameter takes a path,
  and nothing when there is nothing to offer (Typer falls back to files everywhere);
- help texts are written as they are: Typer passes them through Rich, and importing Rich would make every
  TAB slower than `exobridge --help`;
- bash gets the line up to the cursor, and the word as bash split it, so `openrouter:<TAB>` works although
  bash splits words at `:` and `=`.

`python -m exobridge.cli.completions --write` regenerates the scripts in `completions/`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

PROG_NAME = "exobridge"
COMPLETE_VAR = "_EXOBRIDGE_COMPLETE"
SCRIPT_FILES = {"bash": "exobridge.bash", "zsh": "_exobridge", "fish": "exobridge.fish"}

BASH_SCRIPT = r"""
%(complete_func)s() {
    local IFS=$'\n'
    local -a response
    local item value word=${COMP_WORDS[COMP_CWORD]}
    # Readline replaces only the text after the last word-break character: none when the word is `:` or `=`.
    [[ -n $word && -z ${word//[$COMP_WORDBREAKS]/} ]] && word=
    mapfile -t response < <(env %(autocomplete_var)s=complete_bash \
        _TYPER_COMPLETE_ARGS="${COMP_LINE:0:COMP_POINT}" \
        %(autocomplete_var)s_WORD="$word" "$1" 2>/dev/null)
    COMPREPLY=()
    for item in "${response[@]}"; do
        value=${item#*,}
        case $item in
            plain,*)
                COMPREPLY+=("$value")
                [[ $value == *: ]] && compopt -o nospace 2>/dev/null
                ;;
            file,*) compopt -o default 2>/dev/null ;;
            dir,*) compopt -o dirnames 2>/dev/null ;;
        esac
    done
    return 0
}

complete -o nosort -F %(complete_func)s %(prog_name)s
"""

ZSH_SCRIPT = r"""
#compdef %(prog_name)s

%(complete_func)s() {
    local -a response described plain prefixes
    local type value descr
    (( $+commands[%(prog_name)s] )) || return 1
    response=("${(@f)$(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" %(autocomplete_var)s=complete_zsh \
        %(prog_name)s 2>/dev/null)}")
    for type value descr in "${response[@]}"; do
        case $type in
            plain)
                if [[ $value == *: ]]; then
                    prefixes+=("$value")
                elif [[ $descr == _ ]]; then
                    plain+=("$value")
                else
                    described+=("${value//:/\\:}:$descr")
                fi
                ;;
            dir|file)
                # `--key-file=<TAB>`: complete the path after the `=`.
                [[ $PREFIX == -* ]] && compset -P 1 '*='
                if [[ $type == dir ]]; then _path_files -/; else _path_files -f; fi
                ;;
        esac
    done
    (( $#described )) && _describe -V unsorted described -U
    (( $#plain )) && compadd -U -V unsorted -a plain
    (( $#prefixes )) && compadd -U -S '' -V unsorted -a prefixes
    return 0
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    %(complete_func)s "$@"
else
    compdef %(complete_func)s %(prog_name)s
fi
"""

FISH_SCRIPT = r"""
function %(complete_func)s
    set -l response (env %(autocomplete_var)s=complete_fish \
        _TYPER_COMPLETE_ARGS=(commandline -cp | string collect) %(prog_name)s 2>/dev/null)
    for item in $response
        set -l parts (string split -m 1 , -- $item)
        switch $parts[1]
            case plain
                printf '%%s\n' $parts[2]
            case dir file
                # `--key-file=<TAB>`: complete the path after the `=`, keeping the option in front.
                set -l token (commandline -ct)
                set -l option (string match -r -- '^-[^=]*=' $token; or echo '')
                set -l path (string replace -r -- '^-[^=]*=' '' $token)
                set -l found
                if test $parts[1] = dir
                    set found (__fish_complete_directories $path)
                else
                    set found (__fish_complete_path $path)
                end
                for entry in $found
                    printf '%%s%%s\n' $option[1] $entry
                end
        end
    end
end

complete --command %(prog_name)s --no-files --arguments "(%(complete_func)s)"
"""

TEMPLATES = {"bash": BASH_SCRIPT, "zsh": ZSH_SCRIPT, "fish": FISH_SCRIPT}


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def use_scripts() -> None:
    """Make Typer's `--show-completion` / `--install-completion` use these scripts too.

    Typer formats its scripts from a module-level table at call time; pointing it at ours keeps one script
    per shell whichever way it is installed.
    """
    with contextlib.suppress(Exception):
        from typer import _completion_shared

        _completion_shared._completion_scripts.update(TEMPLATES)


def script(shell: str) -> str:
    """The completion script for `shell`, as `exobridge --show-completion <shell>` prints it."""
    from typer._completion_shared import get_completion_script

    use_scripts()
    return get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell) + "\n"


# --- answering a completion request ------------------------------------------------------------------------


def split_line(line: str) -> tuple[list[str], str]:
    """`exobridge chat -m open` → (["chat", "-m"], "open"): the words before the cursor, and the word being
    completed ("" after a space). The program name is dropped. Unclosed quotes are tolerated."""
    from typer._click.shell_completion import split_arg_string

    words = split_arg_string(line)[1:]
    if words and line and not line[-1].isspace():
        return words[:-1], words[-1]
    return words, ""


def option_prefix(word: str) -> str:
    """`--model=ll` → `--model=`: what click strips before completing an option's value (it is put back)."""
    if word.startswith("-") and "=" in word:
        return word.partition("=")[0] + "="
    return ""


def _answer_classes() -> dict[str, type]:
    from typer._completion_classes import BashComplete, FishComplete, ZshComplete

    class LineMixin:
        """Reads the line from `_TYPER_COMPLETE_ARGS` and asks click for the items; shells format them."""

        def get_completion_args(self) -> tuple[list[str], str]:
            return split_line(os.environ.get("_TYPER_COMPLETE_ARGS", ""))

        def get_completions(self, args: list[str], incomplete: str) -> list[Any]:
            """click's answer, plus a `file`/`dir` item for a path parameter (Typer answers those with nothing,
            leaving files to its scripts' fallback, which ours do not have)."""
            from typer._click.shell_completion import CompletionItem, _resolve_context, _resolve_incomplete

            ctx = _resolve_context(self.cli, self.ctx_args, self.prog_name, args)  # type: ignore[attr-defined]
            obj, incomplete = _resolve_incomplete(ctx, args, incomplete)
            items = obj.shell_complete(ctx, incomplete)
            descriptor = getattr(obj, "type_descriptor", None)
            if not items and descriptor is not None and descriptor.is_path:
                kind = "dir" if descriptor.path_type == "dir" else "file"
                items = [CompletionItem(incomplete, type=kind)]
            return items

        def items(self) -> tuple[str, list[Any]]:
            args, word = self.get_completion_args()
            items = self.get_completions(list(args), word)  # type: ignore[attr-defined]
            return word, items

        @staticmethod
        def full_value(item: Any, word: str) -> str:
            value = str(item.value)
            return option_prefix(word) + value if item.type == "plain" else value

        @staticmethod
        def help_text(item: Any) -> str:
            return " ".join(str(item.help).split()) if item.help else ""

    class BashAnswer(LineMixin, BashComplete):
        source_template = BASH_SCRIPT

        def complete(self) -> str:
            word, items = self.items()
            # Bash replaces only its own last word, which starts after the last `:` or `=` of ours.
            bash_word = os.environ.get(f"{self.complete_var}_WORD")
            cut = len(word) - len(bash_word) if bash_word is not None and word.endswith(bash_word) else 0
            lines = []
            for item in items:
                value = self.full_value(item, word)
                if item.type == "plain":
                    if not value.startswith(word[:cut]):
                        continue
                    value = value[cut:]
                lines.append(f"{item.type},{value}")
            return "\n".join(lines)

    class ZshAnswer(LineMixin, ZshComplete):
        source_template = ZSH_SCRIPT

        def complete(self) -> str:
            word, items = self.items()
            return "\n".join(
                f"{item.type}\n{self.full_value(item, word)}\n{self.help_text(item) or '_'}" for item in items
            )

    class FishAnswer(LineMixin, FishComplete):
        source_template = FISH_SCRIPT

        def complete(self) -> str:
            word, items = self.items()
            lines = []
            for item in items:
                help_text = self.help_text(item)
                value = self.full_value(item, word)
                lines.append(f"{item.type},{value}\t{help_text}" if help_text else f"{item.type},{value}")
            return "\n".join(lines)

    return {"bash": BashAnswer, "zsh": ZshAnswer, "fish": FishAnswer}


def _skip_coercion() -> None:
    """Keep the values click parses while finding the completion context as the strings they are.

    Typer coerces every parsed value through Pydantic, and importing it would make a TAB cost twice
    `exobridge --help`. Completion never uses coerced values, and this process ends after answering, so the
    parameter class is changed for the rest of it. Parameter callbacks (`--version`) are not run either.
    """
    with contextlib.suppress(Exception):
        from typer.core import _TyperParameter

        def process_value(self: Any, ctx: Any, value: Any) -> Any:
            return value

        _TyperParameter.process_value = process_value  # type: ignore[method-assign]


def respond(app: typer.Typer) -> bool:
    """Answer a completion request (`_EXOBRIDGE_COMPLETE=complete_<shell>` or `source_<shell>`).

    Returns False when the request is not for bash, zsh or fish, leaving it to Typer (e.g. PowerShell).
    Never fails loudly: on any error the answer is empty and nothing reaches stderr.
    """
    action, _, shell = os.environ.get(COMPLETE_VAR, "").partition("_")
    if shell not in TEMPLATES or action not in ("complete", "source"):
        return False
    out = ""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            if action == "source":
                out = script(shell)
            else:
                from typer.main import get_command

                _skip_coercion()
                args, _ = split_line(os.environ.get("_TYPER_COMPLETE_ARGS", ""))
                from exobridge.cli.app import only_the_subcommand

                tree = get_command(only_the_subcommand(app, args))
                answer = _answer_classes()[shell](tree, {}, PROG_NAME, COMPLETE_VAR)
                out = answer.complete()
                out = f"{out}\n" if out else ""
    except BaseException:
        out = ""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(out)
        sys.stdout.flush()
    return True


# --- autocompletion hooks (Typer `autocompletion=`) --------------------------------------------------------


def complete_provider(incomplete: str) -> list[tuple[str, str]]:
    """Configured provider names (for `-p/--provider`, `keys set|get|remove`)."""
    try:
        from exobridge.core.completion_values import provider_names

        return list(provider_names(incomplete))
    except Exception:
        return []


def complete_model(incomplete: str) -> list[tuple[str, str]]:
    """Model-table names, `provider:` prefixes and cached model ids (for `-m/--model`)."""
    try:
        from exobridge.core.completion_values import model_names

        return list(model_names(incomplete))
    except Exception:
        return []


def complete_config_key(incomplete: str) -> list[tuple[str, str]]:
    """Dotted config keys (for `config get|set|unset`)."""
    try:
        from exobridge.core.completion_values import config_keys

        return list(config_keys(incomplete))
    except Exception:
        return []


# --- the command and the generator -------------------------------------------------------------------------


def completions(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the completion script for SHELL (install: see docs/completions.md)."""
    sys.stdout.write(script(shell.value))


def register(root: typer.Typer) -> None:
    """Add the `completions` command."""
    use_scripts()
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
