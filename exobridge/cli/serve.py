"""`exobridge serve`: the same Exo-first failover as a local OpenAI-compatible endpoint (docs/serve.md).

The options parse into `serve.options.ServeOptions` and `serve.server.serve_run(opts, io)` runs them; a
refused bind raises `UsageError` (2), a config or keys file that does not load `ConfigError` (4), and the
runner turns either into one line and the exit code.
"""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[
        str,
        typer.Option("--host", metavar="ADDR", help="Address to listen on. Not loopback: a client key is required."),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port; 0 picks a free one (named at start-up)."),
    ] = 52480,
    api_key: Annotated[
        str | None, typer.Option("--api-key", metavar="KEY", help="Client key (visible in ps: prefer --api-key-env).")
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option("--api-key-env", metavar="VAR", help="Read the client key from this environment variable."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=1, help="Server processes.")] = 1,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines on stderr.")] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace", metavar="SECONDS", min=0.0, help="Seconds open replies may finish after SIGINT/SIGTERM."
        ),
    ] = 10.0,
) -> int:
    """Serve an OpenAI-compatible endpoint (/v1/chat/completions, /v1/models) routed Exo first."""
    from exobridge.render import io as iostreams
    from exobridge.serve.options import ServeOptions
    from exobridge.serve.server import serve_run

    opts = ServeOptions(
        host=host,
        port=port,
        api_key=api_key,
        api_key_env=api_key_env,
        workers=workers,
        json_logs=json_logs,
        grace=grace,
    )
    return serve_run(opts, iostreams.current())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
