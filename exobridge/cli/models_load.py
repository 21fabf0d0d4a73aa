"""`exobridge models load MODEL` and `exobridge models unload MODEL`: place a model on an Exo cluster (or
download it, on legacy Exo) with progress, and take it off again. The work is core/exo_loading.py; the
output is render/exo_loading.py.

Exit codes: 0 ready (or unloaded), 2 unknown model or bad usage, 3 Exo unreachable / does not fit / placement
failed (with Exo's own reason), 6 still loading when --timeout ran out, 130 Ctrl-C (Exo keeps loading unless
--cancel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from exobridge.cli import completion_hooks

if TYPE_CHECKING:
    from exobridge.core.exo_loading import ExoLoader, LoadEvent, LoadTarget
    from exobridge.render.io import IOStreams


@dataclass
class LoadOptions:
    model: str
    timeout: float | None = None  # None: exo_loading.DEFAULT_TIMEOUT
    cancel: bool = False
    json: bool = False
    poll: float | None = None  # seconds between progress reads (tests shorten it)
    place_wait: float | None = None


@dataclass
class UnloadOptions:
    model: str
    yes: bool = False
    json: bool = False


def _loader(target: LoadTarget, poll: float | None = None, place_wait: float | None = None) -> ExoLoader:
    from exobridge.core import exo_loading, keys

    return exo_loading.ExoLoader(target.provider, keys.resolve(target.provider).value, poll=poll, place_wait=place_wait)


def follow(loader: ExoLoader, target: LoadTarget, view: object, timeout: float) -> LoadEvent:
    """Run the load, showing each event; returns the last one (READY, FAILED or TIMEOUT)."""
    last = None
    for event in loader.load(target, timeout=timeout):
        view.show(event)  # type: ignore[attr-defined]
        last = event
    assert last is not None
    return last


def load_run(opts: LoadOptions, io: IOStreams) -> int:
    from exobridge.core import config as config_mod
    from exobridge.core import exo_loading
    from exobridge.core.errors import Interrupted, UsageError
    from exobridge.render.exo_loading import LoadView

    if opts.timeout is not None and not opts.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    config = config_mod.load()
    target = exo_loading.resolve(opts.model, config)
    view = LoadView(io, json_mode=opts.json)
    timeout = opts.timeout or exo_loading.DEFAULT_TIMEOUT
    with _loader(target, opts.poll, opts.place_wait) as loader:
        try:
            last = follow(loader, target, view, timeout)
        except KeyboardInterrupt as exc:
            view.close()
            model = target.name
            if opts.cancel:
                view.note(f"cancelling: {loader.cancel()}")
            else:
                view.note(
                    f"stopped waiting; Exo keeps loading {model} "
                    f"(exobridge models unload {target.spec} stops it, or use --cancel)"
                )
            raise Interrupted(f"interrupted while loading {model}", signum=getattr(exc, "signum", 2)) from None
        except BaseException:
            view.close()  # an error ended the load: stop the bars (the cursor comes back), then report it
            raise
    error = exo_loading.outcome_error(last)
    code = 0 if error is None else int(getattr(error, "exit_code", 1))
    view.finish(last, code, None if error is None else str(error))
    if error is not None and not opts.json:
        raise error
    return code


def unload_run(opts: UnloadOptions, io: IOStreams) -> int:
    from exobridge.core import config as config_mod
    from exobridge.core import exo_loading
    from exobridge.core.errors import UsageError

    config = config_mod.load()
    target = exo_loading.resolve(opts.model, config)
    with _loader(target) as loader:
        line = loader.connect()
        confirmed = opts.yes
        if line == "legacy" and not confirmed:
            if not (io.is_stdin_tty and io.is_stderr_tty):
                raise UsageError(f"legacy Exo unloads {target.ids[0]} by deleting its files: add --yes to confirm")
            io.write_err(f"Delete the files of {target.ids[0]} on {target.provider.name}? [y/N] ")
            answer = io.stdin.readline().strip().lower()
            if answer not in ("y", "yes"):
                io.notice("nothing deleted")
                return 0
            confirmed = True
        done = loader.unload(target, delete_files=confirmed)
    if opts.json:
        io.write_json(
            {"provider": target.provider.name, "model": loader.model_id, "done": done, "error": None, "exit_code": 0}
        )
    else:
        from exobridge.core.sanitize import terminal_text

        for line_text in done:
            io.write_out(terminal_text(line_text) + "\n")
    return 0


def load(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A model name (llama-3.2-3b), an Exo id, or PROVIDER:ID with several Exo providers.",
            autocompletion=completion_hooks.complete_model,
        ),
    ],
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS", help="Stop waiting after this long (exit 6). Default 1800."),
    ] = None,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="On Ctrl-C, also undo the placement (default: Exo keeps loading).")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line per phase.")] = False,
) -> int:
    """Load a model onto your Exo cluster, with progress, so chat answers from Exo instead of the cloud."""
    from exobridge.render import io as iostreams

    return load_run(LoadOptions(model, timeout=timeout, cancel=cancel, json=json_out), iostreams.current())


def unload(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL", help="The model to take off the cluster.", autocompletion=completion_hooks.complete_model
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Legacy Exo: delete the files without asking.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> int:
    """Take a model off your Exo cluster (legacy Exo: delete its files, after asking)."""
    from exobridge.render import io as iostreams

    return unload_run(UnloadOptions(model, yes=yes, json=json_out), iostreams.current())


def register(group: typer.Typer) -> None:
    """Add `load` and `unload` to the `models` group."""
    group.command("load")(load)
    group.command("unload")(unload)
