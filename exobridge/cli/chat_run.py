"""`exobridge chat`'s work, without Typer: `ChatOptions` in, an exit code out.

cli/chat.py is the Typer command: it only parses the command line into `ChatOptions` and calls `chat_run(opts,
io)`, which does the work. `exobridge chat` alone has nothing to parse, so cli/runner.py calls
`run_without_arguments` without importing Typer at all (the interactive session's first prompt, or a prompt
piped on stdin, does not wait for Typer and Pydantic to load).

Streams: a reader that goes away (`| head`) ends the run quietly (0 while the answer streamed, else the run's
own code); a closed or full stdout is one line on stderr and exit 1; a closed stderr costs nothing but the
notices. SIGTERM and SIGHUP end it like Ctrl-C: partial text kept, the JSON object printed, exit 143/129.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exobridge.core.errors import ExitCode, ExobridgeError, OutputError, UsageError

if TYPE_CHECKING:
    from exobridge.core.config import Config
    from exobridge.render.io import IOStreams


@dataclass
class ChatOptions:
    """`exobridge chat`'s options as parsed (the defaults are what an empty command line gives)."""

    prompt: str | None = None
    model: str | None = None
    system: str | None = None
    providers: list[str] = field(default_factory=list)
    no_fallback: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stream: bool = True
    json: bool = False
    keys: list[str] = field(default_factory=list)
    quiet: bool = False
    verbose: bool = False
    no_log: bool = False  # keep no history of this request (docs/history.md)
    continue_latest: bool = False  # -c: continue the latest conversation
    cid: str | None = None  # --cid: continue this conversation
    budget_override: bool = False  # send even when a budget says no (and say so)
    markdown: bool | None = None  # interactive session: render finished replies as Markdown (None: the config's)


def decode_stdin(raw: bytes | None) -> tuple[str | None, bool]:
    """Piped stdin as text (None when there is none), and whether bytes had to be replaced.

    One trailing newline is dropped, so `echo hi | exobridge chat` sends "hi", not "hi\\n".
    """
    if raw is None:
        return None, False
    try:
        text, replaced = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, replaced = raw.decode("utf-8", errors="replace"), True
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text, replaced


def compose_prompt(argument: str | None, piped: str | None) -> str:
    """`stdin + "\\n\\n" + PROMPT`; `-` or no PROMPT means stdin alone."""
    if argument is None or argument == "-":
        return piped or ""
    if piped:
        return f"{piped}\n\n{argument}"
    return argument


def _cli_keys(values: list[str], providers: list[str], pinned: str | None, config: Config) -> dict[str, str]:
    """`--key NAME=VALUE`, or a bare `--key VALUE` when exactly one provider is targeted."""
    result: dict[str, str] = {}
    for value in values:
        head, sep, tail = value.partition("=")
        if sep and head in config.providers:
            result[head] = tail
            continue
        single = [pinned] if pinned else providers
        if len(single) != 1:
            if sep and head.isidentifier():
                raise UsageError(f"--key {head}=…: {config.unknown_provider(head)}")
            raise UsageError("--key needs one provider: use -p NAME, a NAME:model, or --key NAME=KEY")
        result[single[0]] = value
    return result


def _empty_result_json(requested: str | None) -> dict[str, Any]:
    """chat's usual --json keys, for a failure before any routing (the runner adds error and exit_code)."""
    from exobridge.core.routing import ChatResult

    return ChatResult(requested_model=requested or "").to_json()


def run_without_arguments(io: IOStreams) -> int:
    """`exobridge chat` and nothing else (the interactive session, or a prompt piped on stdin).

    With no argument there is nothing to parse, and `ChatOptions()` is what Typer's parse would give
    (tests/test_cli_chat.py holds the two equal). Typer itself costs ~20 ms to import, and its parse would
    build a Pydantic validator for each of chat's options (importing Pydantic, ~50 ms) only to hand their
    defaults back; cli/runner.py calls this instead of both for that one command line.
    """
    return chat_run(ChatOptions(), io)


def chat_run(opts: ChatOptions, io: IOStreams) -> int:
    """Route one prompt and show it; returns the exit code (errors before routing are raised)."""
    from exobridge.core import config as config_mod

    fields = _empty_result_json(opts.model) if opts.json else None
    try:
        config = config_mod.load()
    except ExobridgeError as exc:  # a config error: under --json, chat's usual keys come with it
        if fields is not None:
            exc.fields = fields
        raise
    if io.stdout_closed:
        raise OutputError("cannot write to stdout: it is closed (nothing would see the answer)")

    def usage(message: str) -> UsageError:
        return UsageError(message, fields=fields)

    piped, replaced = (None, False)
    if opts.prompt is None or opts.prompt == "-" or not io.is_stdin_tty:
        piped, replaced = decode_stdin(io.read_stdin_bytes())
    if opts.prompt in (None, "-") and piped is None:  # stdin is the terminal: nothing piped
        if opts.prompt is None and io.is_stdout_tty and not opts.json:  # an interactive session
            from exobridge.cli.chat_session import run_session  # it loads the routing at the first turn

            return run_session(opts, config, io)
        raise usage('no prompt: give PROMPT or pipe text on stdin (exobridge chat "Hi")')

    from exobridge.cli import hints, runner
    from exobridge.core import model_targets
    from exobridge.core.routing import ChatRequest, ChatResult, Router
    from exobridge.render.chat import ChatView

    def hint(attempt: Any) -> str | None:
        return hints.hint_for(attempt.kind, config.providers.get(attempt.provider))

    def free(name: str) -> bool:
        return hints.kind_is_free(config.providers.get(name))

    view = ChatView(json_mode=opts.json, quiet=opts.quiet, verbose=opts.verbose, io=io, hint=hint, free=free)
    if replaced:
        view.warn("stdin is not valid UTF-8; undecodable bytes were replaced")
    text = compose_prompt(opts.prompt, piped)
    if not text.strip():
        raise usage("empty prompt")

    only = opts.providers
    unknown = [name for name in only if name not in config.providers]
    if unknown:
        raise usage(config.unknown_provider(unknown[0]))
    spec = opts.model or config.default_model
    if fields is not None:
        fields = _empty_result_json(spec)
    pinned, _ = model_targets.split_pinned(spec, config)
    try:
        cli_keys = _cli_keys(opts.keys, only, pinned, config)
    except UsageError as exc:
        raise usage(str(exc)) from None

    targets = model_targets.targets(spec, config, only=only)
    if opts.no_fallback:
        enabled = [t for t in targets if t.provider.enabled]
        targets = enabled[:1] or targets[:1]
    if not targets:
        where = f" with -p {', '.join(only)}" if only else " (every provider is disabled: exobridge providers list)"
        result = ChatResult(requested_model=spec, error=f"no configured provider matches {spec!r}{where}")
        result.exit_code = ExitCode.NO_PROVIDER
        return _finish(view, io, result)

    from exobridge.cli.chat_history import ChatSession

    session = ChatSession.prepare(opts, config, io, text, targets)
    messages = session.messages()
    request = ChatRequest(
        messages=messages,
        model=spec,
        temperature=opts.temperature,
        max_tokens=opts.max_tokens,
        top_p=opts.top_p,
        stream=opts.stream,
    )

    from exobridge.core.cooldown import FileRouteState

    state = FileRouteState()
    state.store.load()
    shown = list(state.warnings)
    for warning in shown:
        view.warn(warning)
    from exobridge.cli.chat_loading import NotLoadedHandler

    not_loaded = NotLoadedHandler(config, io, spec, targets, quiet=opts.quiet)
    router = Router(
        config, cli_keys=cli_keys, observer=view, keep_text=opts.json, state=state, on_not_loaded=not_loaded
    )
    session.attach(router)
    with runner.signals_as_interrupt() as caught:
        try:
            result = router.run(request, targets)
        except BrokenPipeError:  # the reader left while the answer streamed: it was answering
            runner.silence_stdout()
            return ExitCode.OK
    for warning in state.warnings:
        if warning not in shown:
            view.warn(warning)
    interrupted_as = "interrupted"
    if result.exit_code == ExitCode.INTERRUPTED and caught.signum is not None:
        result.exit_code = ExitCode.for_signal(caught.signum)
        interrupted_as = runner.interrupt_notice(caught)
        result.error = interrupted_as
    session.finish(result, cli_keys)
    return _finish(view, io, result, interrupted_as)


def _finish(view: Any, io: IOStreams, result: Any, interrupted_as: str = "interrupted") -> int:
    """Print the end of the run; a reader that left keeps the run's exit code (0 only when it answered)."""
    from exobridge.cli import runner

    try:
        view.finish_output(result)
    except BrokenPipeError:
        runner.silence_stdout()
    view.finish_notices(result, interrupted_as)
    return int(result.exit_code)
