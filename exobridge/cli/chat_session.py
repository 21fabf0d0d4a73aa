"""The interactive chat session: `exobridge chat` on a terminal with no prompt and nothing piped.

A line editor (prompt_toolkit, imported only here) with input history (`<data dir>/input_history`) and
multi-line input (Esc then Enter, or Alt-Enter, adds a line; Enter sends). Each turn is routed like
`exobridge chat` (failover per turn, the usual summary line after each), recorded in the history as one
conversation, and earlier turns are sent again. A turn answered by another provider than the one before says
so. Ctrl-C stops the current reply (what came is kept, recorded as interrupted) and returns to the prompt;
Ctrl-C at the prompt clears the line; Ctrl-D ends the session (exit 0).

Slash commands (completed with TAB): /model NAME, /provider NAME|any, /system TEXT|off, /retry, /clear,
/save FILE, /help, /exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exobridge.core.errors import ExitCode

if TYPE_CHECKING:
    from exobridge.core.config import Config
    from exobridge.core.routing import ChatResult
    from exobridge.render.io import IOStreams

COMMANDS = {
    "/model": "/model NAME: ask for another model from the next turn on",
    "/provider": "/provider NAME: only this provider (/provider any: all of them again)",
    "/system": "/system TEXT: the system prompt from now on (/system off: none)",
    "/retry": "/retry: send the last prompt again",
    "/clear": "/clear: forget the earlier turns (a new conversation)",
    "/save": "/save FILE: write this conversation as Markdown",
    "/markdown": "/markdown on|off: show each finished reply rendered as Markdown",
    "/help": "/help: this list",
    "/exit": "/exit: end the session (or Ctrl-D)",
}
INPUT_HISTORY = "input_history"


@dataclass
class Turn:
    prompt: str
    reply: str
    provider: str | None
    outcome: str


@dataclass
class Session:
    config: Config
    io: IOStreams
    opts: Any
    model: str
    providers: list[str]
    system: str | None
    turns: list[Turn] = field(default_factory=list)
    conversation: str = ""
    parent: int | None = None
    last_provider: str | None = None
    markdown: bool = False

    def say(self, line: str) -> None:
        from exobridge.core.sanitize import terminal_text

        self.io.notice(terminal_text(line))

    # --- one turn -----------------------------------------------------------------------------------------
    def messages(self, prompt: str) -> list[dict[str, str]]:
        sent: list[dict[str, str]] = []
        if self.system:
            sent.append({"role": "system", "content": self.system})
        for turn in self.turns:
            if turn.reply:
                sent += [{"role": "user", "content": turn.prompt}, {"role": "assistant", "content": turn.reply}]
        sent.append({"role": "user", "content": prompt})
        return sent

    def ask(self, prompt: str) -> None:
        from exobridge.cli import hints
        from exobridge.cli.chat_history import _budget_check
        from exobridge.core import history, history_record, model_targets, secrets
        from exobridge.core.cooldown import FileRouteState
        from exobridge.core.routing import ChatRequest, Router
        from exobridge.render.chat import ChatView

        config = self.config
        targets = model_targets.targets(self.model, config, only=self.providers)
        if not targets:
            self.say(f"exobridge: no configured provider matches {self.model!r}")
            return

        def hint(attempt: Any) -> str | None:
            return hints.hint_for(attempt.kind, config.providers.get(attempt.provider))

        def free(name: str) -> bool:
            return hints.kind_is_free(config.providers.get(name))

        view = ChatView(json_mode=False, quiet=False, verbose=self.opts.verbose, io=self.io, hint=hint, free=free)
        request = ChatRequest(
            messages=self.messages(prompt),
            model=self.model,
            temperature=self.opts.temperature,
            max_tokens=self.opts.max_tokens,
            top_p=self.opts.top_p,
            stream=True,
        )
        state = FileRouteState()
        state.store.load()
        router = Router(config, observer=view, keep_text=True, state=state)
        check = _budget_check(config, self.opts)
        if check is not None:
            router.pre_send = check
        result = router.run(request, targets)
        view.finish_output(result)
        if self.markdown and result.exit_code == 0 and result.text:
            self.render_markdown(result.text)
        view.finish_notices(result)
        if check is not None:
            for line in check.notices:
                self.say(f"exobridge: {line}")
        change = provider_change(result, self.last_provider)
        if change:
            self.say(f"exobridge: {change}")
        if result.provider and result.text:
            self.last_provider = result.provider
        outcome = history_record.outcome_of(result)
        self.turns.append(Turn(prompt, result.text, result.provider, outcome))
        self.record(result, prompt, history, history_record, secrets)

    def record(self, result: ChatResult, prompt: str, history: Any, history_record: Any, secrets: Any) -> None:
        if history.logging_disabled(self.config.log, self.opts.no_log):
            return
        entry = history_record.entry_for(
            result,
            prompt=prompt,
            system=self.system,
            messages=None,
            conversation=self.conversation,
            parent=self.parent,
            config=self.config,
        )
        for line in history_record.record(entry, secrets.config_redactor(self.config)):
            self.say(f"exobridge: warning: {line}")
        if entry.id:
            self.parent = entry.id

    def render_markdown(self, text: str) -> None:
        """Replace the streamed reply with its Markdown rendering (below it when it no longer fits the screen).
        Provider text is never read as Rich markup: Markdown() parses it as Markdown only."""
        import os
        import shutil

        from rich.cells import cell_len
        from rich.markdown import Markdown

        width = max(self.io.width, 1)
        rows = sum(max(1, -(-cell_len(line) // width)) for line in text.split("\n"))
        height = shutil.get_terminal_size((width, 24)).lines
        if rows < height and os.environ.get("TERM") != "dumb":
            self.io.write_out(f"\x1b[{rows}F\x1b[J")
        else:
            self.io.write_out("\n")
        self.io.rich_console().print(Markdown(text))

    # --- slash commands -------------------------------------------------------------------------------------
    def command(self, line: str) -> bool:
        """Run a slash command; False when the session ends."""
        name, _, argument = line.strip().partition(" ")
        argument = argument.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            for text in COMMANDS.values():
                self.say(text)
            self.say("Enter sends; Esc then Enter adds a line; Ctrl-C stops a reply; Ctrl-D ends the session")
        elif name == "/model":
            if argument:
                self.model = argument
            self.say(f"model: {self.model}")
        elif name == "/provider":
            if argument in ("", "any", "all"):
                self.providers = []
            elif argument not in self.config.providers:
                self.say(f"exobridge: {self.config.unknown_provider(argument)}")
            else:
                self.providers = [argument]
            self.say(f"providers: {', '.join(self.providers) or 'any, by priority'}")
        elif name == "/system":
            self.system = None if argument in ("", "off") else argument
            self.say(f"system prompt: {self.system or 'none'}")
        elif name == "/retry":
            if not self.turns:
                self.say("nothing to retry yet")
            else:
                last = self.turns.pop()
                self.ask(last.prompt)
        elif name == "/clear":
            from exobridge.core import history

            self.turns.clear()
            self.conversation, self.parent = history.new_conversation_id(), None
            self.say("cleared: a new conversation starts")
        elif name == "/save":
            self.save(argument)
        elif name == "/markdown":
            self.markdown = argument != "off" if argument else not self.markdown
            self.say(f"markdown: {'on' if self.markdown else 'off'}")
        else:
            self.say(f"unknown command {name} (/help lists them)")
        return True

    def save(self, target: str) -> None:
        if not target:
            self.say("/save needs a file name")
            return
        from exobridge.core import paths

        lines = [f"# exobridge conversation {self.conversation}\n"]
        if self.system:
            lines.append(f"**System:** {self.system}\n")
        for turn in self.turns:
            lines.append(f"**You:**\n\n{turn.prompt}\n")
            lines.append(f"**{turn.provider or 'no reply'}** ({turn.outcome}):\n\n{turn.reply}\n")
        path = paths.expand_user(target)
        try:
            Path(path).write_text("\n".join(lines), encoding="utf-8")
        except OSError as exc:
            self.say(f"exobridge: cannot save to {path}: {exc.strerror or exc}")
            return
        self.say(f"saved {len(self.turns)} turns to {path}")


def provider_change(result: ChatResult, last_provider: str | None) -> str | None:
    """When another provider than the last turn's answered: "answered by openrouter this turn (exo failed:
    HTTP 503 …)", naming what happened to the last turn's provider this turn (or that it was not asked)."""
    from exobridge.core.routing import Outcome

    if not result.provider or not result.text or not last_provider or result.provider == last_provider:
        return None
    tried = [a for a in result.attempts if a.provider == last_provider and a.outcome != Outcome.OK]
    if tried:
        last = tried[-1]
        why = f"{last_provider} {last.outcome}: {last.reason}" if last.reason else f"{last_provider} {last.outcome}"
    else:
        why = f"the last turn: {last_provider}"
    return f"answered by {result.provider} this turn ({why})"


def markdown_wanted(opts: Any, config: Config) -> bool:
    """`--markdown` / `--no-markdown` when given, else `markdown = true|false` in the config."""
    flag = getattr(opts, "markdown", None)
    return bool(config.markdown) if flag is None else bool(flag)


def run_session(opts: Any, config: Config, io: IOStreams) -> int:
    """The read-route-print loop; returns 0 when the user ends it."""
    import signal

    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import FileHistory
        from prompt_toolkit.key_binding import KeyBindings
    except ImportError:
        from exobridge.core.errors import UsageError

        raise UsageError(
            'no prompt: give PROMPT or pipe text on stdin (exobridge chat "Hi"); the interactive session needs '
            "prompt_toolkit (pip install prompt_toolkit)"
        ) from None

    from exobridge.core import files, history, paths

    session = Session(
        config,
        io,
        opts,
        model=opts.model or config.default_model,
        providers=list(opts.providers),
        system=opts.system,
        conversation=history.new_conversation_id(),
        markdown=markdown_wanted(opts, config),
    )
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    data = paths.data_dir()
    input_history = None
    try:
        files.make_private_dir(data)
        input_history = FileHistory(str(data / INPUT_HISTORY))
    except OSError:
        pass
    prompter: PromptSession[str] = PromptSession(
        history=input_history,
        completer=WordCompleter(list(COMMANDS), sentence=True),
        key_bindings=bindings,
        multiline=False,
    )
    session.say(f"exobridge chat: model {session.model}; /help for commands, Ctrl-D to end")
    while True:
        try:
            line = prompter.prompt("> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return ExitCode.OK
        if not line.strip():
            continue
        if line.startswith("/"):
            if not session.command(line):
                return ExitCode.OK
            continue
        # The line editor handles Ctrl-C itself while it reads; while a reply streams, Ctrl-C must raise
        # KeyboardInterrupt again (the router keeps the partial reply and marks it interrupted).
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            session.ask(line)
        except KeyboardInterrupt:  # between the reply and its summary: back to the prompt
            io.write_err("\n")
        finally:
            signal.signal(signal.SIGINT, previous)
