"""`exobridge chat`: one prompt, routed Exo first, answered on stdout."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from exobridge.cli import completions, exits

if TYPE_CHECKING:
    from exobridge.core.config import Config


def read_stdin(stream: object = None) -> tuple[str | None, bool]:
    """Piped stdin as text (None on a terminal), and whether bytes had to be replaced.

    One trailing newline is dropped, so `echo hi | exobridge chat` sends "hi", not "hi\\n".
    """
    source = stream if stream is not None else sys.stdin
    try:
        if source.isatty():  # type: ignore[attr-defined]
            return None, False
        raw = source.buffer.read()  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
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
                exits.fail(f"--key {head}=…: {config.unknown_provider(head)}", exits.USAGE)
            exits.fail("--key needs one provider: use -p NAME, a NAME:model, or --key NAME=KEY", exits.USAGE)
        result[single[0]] = value
    return result


def chat(
    prompt: Annotated[str | None, typer.Argument(help="The prompt. '-' or none: read stdin.")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model name, or provider:model.", autocompletion=completions.complete_model),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            help="Only these providers (repeatable).",
            autocompletion=completions.complete_provider,
        ),
    ] = None,
    no_fallback: Annotated[bool, typer.Option("--no-fallback", help="Try only the first provider.")] = False,
    temperature: Annotated[float | None, typer.Option(min=0.0, max=2.0, help="Sampling temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="Reply length limit.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", min=0.0, max=1.0, help="Nucleus sampling.")] = None,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Wait for the whole reply.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (schema in README).")] = False,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="API key for this run: KEY (with one provider) or NAME=KEY."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No notices or summary.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Every attempt, even when piped.")] = False,
) -> None:
    """Send PROMPT (and piped stdin) to Exo first, then the cloud by priority."""
    from exobridge.core import model_map
    from exobridge.core.routing import ChatRequest, Router
    from exobridge.render.chat import ChatView

    config = exits.load_config()
    view = ChatView(json_mode=json_out, quiet=quiet, verbose=verbose)

    piped, replaced = (None, False)
    if prompt is None or prompt == "-" or not sys.stdin.isatty():
        piped, replaced = read_stdin()
    if replaced:
        view.warn("stdin is not valid UTF-8; undecodable bytes were replaced")
    if prompt in (None, "-") and piped is None:  # stdin is the terminal: nothing piped
        exits.fail('no prompt: give PROMPT or pipe text on stdin (exobridge chat "Hi")', exits.USAGE)
    text = compose_prompt(prompt, piped)
    if not text.strip():
        exits.fail("empty prompt", exits.USAGE)

    only = provider or []
    unknown = [name for name in only if name not in config.providers]
    if unknown:
        exits.fail(config.unknown_provider(unknown[0]), exits.USAGE)
    spec = model or config.default_model
    pinned, _ = model_map.split_pinned(spec, config)
    cli_keys = _cli_keys(key or [], only, pinned, config)

    targets = model_map.targets(spec, config, only=only)
    if no_fallback:
        enabled = [t for t in targets if t.provider.enabled]
        targets = enabled[:1] or targets[:1]
    if not targets:
        from exobridge.core.routing import ChatResult

        where = f" with -p {', '.join(only)}" if only else " (every provider is disabled: exobridge providers list)"
        result = ChatResult(requested_model=spec, error=f"no configured provider matches {spec!r}{where}")
        result.exit_code = exits.NO_PROVIDER
        view.finish(result, None)
        raise typer.Exit(result.exit_code)

    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    request = ChatRequest(
        messages=messages,
        model=spec,
        temperature=temperature,
        max_tokens=max_tokens,
        top_p=top_p,
        stream=not no_stream,
    )

    from exobridge.core.cooldown import FileRouteState

    state = FileRouteState()
    state.store.load()
    shown = list(state.warnings)
    for warning in shown:
        view.warn(warning)
    router = Router(config, cli_keys=cli_keys, observer=view, keep_text=json_out, state=state)
    try:
        result = router.run(request, targets)
        for warning in state.warnings:
            if warning not in shown:
                view.warn(warning)
        kind = config.providers[result.provider].kind if result.provider in config.providers else None
        view.finish(result, kind)
    except BrokenPipeError:
        exits.silence_stdout()
        raise typer.Exit(exits.OK) from None
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
