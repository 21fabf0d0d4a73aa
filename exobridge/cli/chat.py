"""`exobridge chat`: one prompt, routed Exo first, answered on stdout.

The Typer command only parses the command line into `ChatOptions` and calls `chat_run(opts, io)`; both, and
what the run does with its streams and signals, are cli/chat_run.py's.
"""

# No `from __future__ import annotations`: Typer reads chat()'s annotations more than once per command line,
# and string annotations are evaluated again each time (~2 ms for these eighteen options).
from typing import Annotated

import typer

from exobridge.cli import chat_run as run
from exobridge.cli import completion_hooks
from exobridge.cli.chat_run import ChatOptions


def chat(
    prompt: Annotated[str | None, typer.Argument(help="The prompt. '-' or none: read stdin.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Model name, or provider:model.", autocompletion=completion_hooks.complete_model
        ),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            help="Only these providers (repeatable).",
            autocompletion=completion_hooks.complete_provider,
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
    no_log: Annotated[bool, typer.Option("--no-log", help="Keep no history of this request.")] = False,
    continue_latest: Annotated[
        bool, typer.Option("--continue", "-c", help="Continue the latest conversation.")
    ] = False,
    cid: Annotated[str | None, typer.Option("--cid", help="Continue conversation ID (exobridge history list).")] = None,
    budget_override: Annotated[
        bool, typer.Option("--budget-override", help="Send even over a budget (said on stderr).")
    ] = False,
    markdown: Annotated[
        bool | None,
        typer.Option(
            "--markdown/--no-markdown",
            help="Interactive session: render each finished reply as Markdown (default: markdown in the config).",
        ),
    ] = None,
) -> int:
    """Send PROMPT (and piped stdin) to Exo first, then the cloud by priority."""
    from exobridge.render import io as iostreams

    opts = ChatOptions(
        prompt=prompt,
        model=model,
        system=system,
        providers=list(provider or []),
        no_fallback=no_fallback,
        temperature=temperature,
        max_tokens=max_tokens,
        top_p=top_p,
        stream=not no_stream,
        json=json_out,
        keys=list(key or []),
        quiet=quiet,
        verbose=verbose,
        no_log=no_log,
        continue_latest=continue_latest,
        cid=cid,
        budget_override=budget_override,
        markdown=markdown,
    )
    return run.chat_run(opts, iostreams.current())


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
