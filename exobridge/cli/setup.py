"""`exobridge setup`: the interactive first-run guide (docs/setup.md). Safe to re-run.

It finds Exo, offers to store the cloud keys (checked with each provider before they are kept), to add an
OpenAI-compatible endpoint and to pick a default model some provider serves now; then it writes everything at
once (core/setup_flow.py: the same code as `config set`, `providers add` and `keys set`), prints what it
wrote, and sends one test request through the normal routing. Ctrl-C or Ctrl-D before the end writes nothing.
Not on a terminal it refuses (exit 2) and names the commands to use instead.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from exobridge.core.errors import ExitCode, Interrupted, UsageError

if TYPE_CHECKING:
    from exobridge.cli.prompts import Prompter
    from exobridge.core.config import Config
    from exobridge.core.setup_flow import SetupPlan
    from exobridge.render.io import IOStreams

NOT_A_TERMINAL = (
    "setup asks questions and needs a terminal; without one, use `exobridge config set KEY VALUE` "
    "(e.g. providers.exo.url) and `exobridge keys set PROVIDER` (docs/setup.md)"
)
MODELS_SHOWN = 12  # default-model choices listed
ENDPOINT_MODELS_SHOWN = 20
TEST_PROMPT = "Say hi"


@dataclass
class SetupOptions:
    exo_urls: list[str] = field(default_factory=list)
    skip_keys: bool = False
    no_test: bool = False


@dataclass
class _Session:
    """What the questions learned: the plan to write, and who can serve what now."""

    config: Config
    prompter: Prompter
    plan: SetupPlan
    local: dict[str, list[str]] = field(default_factory=dict)  # provider -> ids it serves (found this run)
    keyed: list[str] = field(default_factory=list)  # enabled providers with a usable key


def setup_run(opts: SetupOptions, io: IOStreams) -> int:
    from exobridge.cli.prompts import Prompter, interactive
    from exobridge.core import config as config_mod
    from exobridge.core.setup_flow import SetupPlan

    if not interactive(io):
        raise UsageError(NOT_A_TERMINAL)
    config = config_mod.load()
    session = _Session(config, Prompter(io), SetupPlan())
    say = session.prompter.say
    say("exobridge setup: answers are written at the end; Ctrl-C before that writes nothing.")
    say(f"config file: {config.path}{'' if config.file_exists else ' (not created yet)'}")
    say()
    try:
        _find_exo(session, opts.exo_urls)
        if opts.skip_keys:
            say("Keys: skipped (--skip-keys).")
            _note_existing_keys(session)
        else:
            _ask_keys(session)
        _ask_endpoints(session)
        _ask_default_model(session)
        ready = _ready_to_write(session)
    except KeyboardInterrupt as stop:  # Ctrl-C (or SIGTERM/SIGHUP, whose exit codes are kept)
        signum = getattr(stop, "signum", signal.SIGINT)
        raise Interrupted("interrupted: nothing was written", signum=signum) from None
    if not ready or not _write(session):
        return ExitCode.OK
    return _test(session, opts, io)


# --- Exo -------------------------------------------------------------------------------------------------------


def _find_exo(session: _Session, given: list[str]) -> None:
    import os

    from exobridge.core import setup_flow
    from exobridge.core.config import is_http_url, url_env_of

    say, ask = session.prompter.say, session.prompter
    exo = setup_flow.exo_provider(session.config)
    if exo is None:
        say("Exo: no provider of an Exo kind is configured; skipped.")
        return
    for url in given:
        if not is_http_url(url.strip()):
            raise UsageError(f"--exo-url: not an http(s) URL: {url!r}")
    urls = setup_flow.exo_candidates(session.config, given)
    say(f"Looking for Exo at {', '.join(urls)} …")
    findings = setup_flow.probe_exo(session.config, urls)
    for finding in findings:
        old = " (Exo's old default port)" if finding.answered and _port(finding.url) == setup_flow.OLD_EXO_PORT else ""
        say(f"  {finding.url}: {finding.detail}{old}")
    answered = [f for f in findings if f.answered]
    chosen = None
    if len(answered) == 1:
        chosen = answered[0]
    elif answered:
        index = ask.choose("Which Exo should exobridge use?", [f"{f.url} ({f.detail})" for f in answered], 0)
        chosen = answered[index if index is not None else 0]
    else:
        say("No Exo API answered. Start Exo (`exo`) on this machine, or give its address.")
        typed = ask.text("Exo URL (Enter to skip)")
        if typed:
            if not is_http_url(typed):
                say(f"  not an http(s) URL: {typed!r}; Exo skipped")
                return
            finding = setup_flow.probe_exo(session.config, [typed.rstrip("/")])[0]
            say(f"  {finding.url}: {finding.detail}")
            if finding.answered:
                chosen = finding
            elif ask.confirm(f"No Exo API answered at {finding.url}; write it anyway?", default=False):
                session.plan.settings[f"providers.{exo.name}.url"] = finding.url
                return
    if chosen is None:
        return
    if exo.urls and exo.urls[0] == chosen.url:
        say(f"Exo: {exo.name} already uses {chosen.url}.")
    elif ask.confirm(f"Use {chosen.url} for {exo.name}? (providers.{exo.name}.url)", default=True):
        session.plan.settings[f"providers.{exo.name}.url"] = chosen.url
        variable = url_env_of(exo.kind)
        if variable and os.environ.get(variable, "").strip():
            say(f"  note: {variable} is set in the environment and overrides this url")
    if not exo.enabled and ask.confirm(f"{exo.name} is disabled; enable it?", default=True):
        session.plan.enable.append(exo.name)
    if exo.enabled or exo.name in session.plan.enable:
        session.local[exo.name] = chosen.models  # what it serves now counts for the default model


def _port(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).port
    except ValueError:
        return None


# --- keys ------------------------------------------------------------------------------------------------------


def _keyed_providers(config: Config) -> list[tuple[object, str]]:
    """(provider, its kind's label) for every provider whose kind needs a key."""
    from exobridge.core import providers

    found = []
    for provider in config.ordered(include_disabled=True):
        kind = providers.kind_class(provider.kind)
        if kind.needs_key:
            found.append((provider, kind.label))
    return found


def _note_existing_keys(session: _Session) -> None:
    from exobridge.core import keys

    for provider, _ in _keyed_providers(session.config):
        if provider.enabled and not keys.resolve(provider).missing:
            session.keyed.append(provider.name)


def _ask_keys(session: _Session) -> None:
    from exobridge.core import keys, keys_file, setup_flow
    from exobridge.core.secrets import mask

    say, ask = session.prompter.say, session.prompter
    for provider, label in _keyed_providers(session.config):
        say()
        resolved = keys.resolve(provider)
        state = "" if provider.enabled else ", disabled"
        if not resolved.missing:
            say(f"{label} ({provider.name}{state}): key from {resolved.source} ({resolved.masked})")
            if not ask.confirm(f"Store a different {label} key?", default=False):
                if provider.enabled:
                    session.keyed.append(provider.name)
                continue
        else:
            say(f"{label} ({provider.name}{state}): no key yet.")
        while True:
            typed = ask.secret(f"{label} key for {provider.name} (input hidden; Enter to skip)")
            if not typed:
                say(f"  {label}: skipped")
                break
            try:
                key = keys_file.clean_key(typed)
            except ValueError as exc:
                say(f"  {exc}")
                continue
            say(f"  checking {mask(key)} with {label} …")
            check = setup_flow.check_key(provider, key)
            say(f"  {label}: key {check.detail}")
            if check.valid is False:
                if ask.confirm("Try another key?", default=True):
                    continue
                break
            if check.valid is None and not ask.confirm("Store it anyway?", default=False):
                break
            session.plan.keys[provider.name] = key
            if provider.enabled:
                session.keyed.append(provider.name)
            elif ask.confirm(f"{provider.name} is disabled; enable it?", default=True):
                session.plan.enable.append(provider.name)
                session.keyed.append(provider.name)
            break


# --- OpenAI-compatible endpoints -------------------------------------------------------------------------------


def _free_name(session: _Session) -> str:
    taken = set(session.config.providers) | {new.name for new in session.plan.added}
    name, number = "local", 1
    while name in taken:
        number += 1
        name = f"local{number}"
    return name


def _ask_endpoints(session: _Session) -> None:
    from exobridge.core import provider_admin, provider_check
    from exobridge.core.config import is_http_url
    from exobridge.core.config_schema import PROVIDER_NAME
    from exobridge.core.setup_flow import NewProvider

    say, ask = session.prompter.say, session.prompter
    say()
    question = "Add an OpenAI-compatible endpoint (Ollama, llama.cpp, vLLM, LM Studio…)?"
    while ask.confirm(question, default=False):
        question = "Add another endpoint?"
        url = ask.text("Its base URL (e.g. http://localhost:11434/v1)").rstrip("/")
        if not is_http_url(url):
            say(f"  not an http(s) URL: {url!r}")
            continue
        name = ask.text("A name for it", default=_free_name(session))
        taken = set(session.config.providers) | {new.name for new in session.plan.added}
        if not PROVIDER_NAME.match(name) or name in taken:
            say(f"  {name!r} is taken or not a name (letters, digits, '_' and '-')")
            continue
        try:
            planned = provider_admin.planned_provider(name, "openai", [url])
        except UsageError as exc:
            say(f"  {exc}")
            continue
        probe = provider_check.probe_models(planned, None)
        say(f"  {probe.url}: {'answered (' + probe.detail + ')' if probe.ok else probe.detail}")
        served = probe.models or []
        if not probe.ok and not ask.confirm(f"Add {name} anyway?", default=False):
            continue
        model = None
        if len(served) > 1:
            shown = served[:ENDPOINT_MODELS_SHOWN]
            index = ask.choose(f"Which model should {name} get when a name has no id for it?", shown)
            model = None if index is None else shown[index]
        plan = provider_check.plan_models(planned, served, session.config, model=model)
        session.plan.added.append(NewProvider(name, "openai", url, plan))
        session.local[name] = served
        for key, value in plan.settings():
            say(f"  will set {key} = {value!r}")


# --- default model ---------------------------------------------------------------------------------------------


def _ask_default_model(session: _Session) -> None:
    from exobridge.core import setup_flow

    say, ask = session.prompter.say, session.prompter
    say()
    current = session.config.default_model
    options = setup_flow.servable_models(session.config, session.local, session.keyed)
    if not options:
        say(f"No provider can serve a model right now, so default_model stays {current}.")
        return
    shown = options[:MODELS_SHOWN]
    names = [name for name, _ in shown]
    labels = [f"{name}  ({', '.join(by)}){'  [current]' if name == current else ''}" for name, by in shown]
    say(f"Models a provider can serve now (default_model is {current}):")
    default = names.index(current) if current in names else None
    index = ask.choose("Default model", labels, default)
    if index is not None and names[index] != current:
        session.plan.settings["default_model"] = names[index]


# --- write and test --------------------------------------------------------------------------------------------


def _ready_to_write(session: _Session) -> bool:
    """Show the plan and ask once more; True when there is something to write and the answer is yes."""
    from exobridge.core.secrets import mask

    say, ask, plan = session.prompter.say, session.prompter, session.plan
    say()
    if plan.empty():
        say("Nothing to change: your setup stays as it is.")
        return False
    say("About to write:")
    for new in plan.added:
        say(f"  add provider {new.name} (openai, {new.url})")
        for key, value in new.models.settings():
            say(f"    {key} = {value!r}")
    for name in plan.enable:
        say(f"  enable {name}")
    for key, value in plan.settings.items():
        say(f"  {key} = {value!r}")
    for name, key in plan.keys.items():
        say(f"  key for {name}: {mask(key)} (keys file, 0600)")
    if not ask.confirm("Write these changes?", default=True):
        say("Nothing was written.")
        return False
    return True


def _write(session: _Session) -> bool:
    """Write the plan (all at once) and print each line written."""
    from exobridge.core import setup_flow

    say = session.prompter.say
    written = setup_flow.write_plan(session.plan)
    if written.config_path is not None:
        say(f"Wrote {written.config_path}:")
        for line in written.config_lines:
            say(f"  {line}")
    if written.keys_path is not None:
        say(f"Wrote {written.keys_path} (mode 0600):")
        for line in written.key_lines:
            say(f"  {line}")
    return True


def _test(session: _Session, opts: SetupOptions, io: IOStreams) -> int:
    from exobridge.cli.chat_run import ChatOptions, chat_run

    say = session.prompter.say
    say()
    if opts.no_test:
        say(f'Test skipped (--no-test). Try: exobridge chat "{TEST_PROMPT}"')
        return ExitCode.OK
    say(f'Testing: exobridge chat "{TEST_PROMPT}"')
    code = chat_run(ChatOptions(prompt=TEST_PROMPT), io)
    if code == ExitCode.OK:
        say("Setup works.")
    else:
        say("The test got no answer; `exobridge doctor` says why.")
    return code


def setup(
    exo_url: Annotated[
        list[str] | None,
        typer.Option(
            "--exo-url", metavar="URL", help="Also look for Exo here (repeatable), e.g. http://192.168.1.20:52415."
        ),
    ] = None,
    skip_keys: Annotated[bool, typer.Option("--skip-keys", help="Do not ask for cloud keys.")] = False,
    no_test: Annotated[bool, typer.Option("--no-test", help="Do not send the test request at the end.")] = False,
) -> int:
    """Interactive first-run guide: find Exo, store keys, add an endpoint, pick a default model, test."""
    from exobridge.render import io as iostreams

    return setup_run(SetupOptions(list(exo_url or []), skip_keys, no_test), iostreams.current())


def register(app: typer.Typer) -> None:
    app.command("setup")(setup)
