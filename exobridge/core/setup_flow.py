"""The non-interactive half of `exobridge setup`: find Exo, check a key, plan the writes, write them at once.

The command (cli/setup.py) asks the questions; this module probes and writes. Answers are collected in a
`SetupPlan` and written only at the end by `write_plan`, through the same code as `config set` (the schema
check of `config_keys.coerce`, `config_file.edit_config`: locked, validated, atomic, comments kept),
`providers add` (`provider_admin.add_provider`, `provider_check.apply_models`) and `keys set`
(`keys_file.set_keys`: 0600): a run stopped half way writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from exobridge.core.config import Config, ProviderConfig
    from exobridge.core.provider_check import ModelPlan
    from exobridge.core.provider_status import ProbeResult

EXO_PORTS = (52415, 8000)  # Exo's port now, and its old default
OLD_EXO_PORT = 8000
EXO_PORTS_ENV = "EXOBRIDGE_SETUP_EXO_PORTS"  # replaces EXO_PORTS (comma-separated), e.g. for tests
PROBE_READ_TIMEOUT = 3.0


def exo_provider(config: Config) -> ProviderConfig | None:
    """The first provider (priority order, disabled ones too) of a kind probed as an Exo cluster."""
    from exobridge.core import providers

    for provider in config.ordered(include_disabled=True):
        if providers.kind_class(provider.kind).status_probe == providers.StatusProbe.EXO_CLUSTER:
            return provider
    return None


def exo_candidates(config: Config, given: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Where to look for Exo: the URLs given, the configured ones, then localhost on Exo's usual ports."""
    env = os.environ if env is None else env
    raw = env.get(EXO_PORTS_ENV, "").strip()
    ports = [int(p) for p in raw.replace(" ", "").split(",") if p.isdigit()] if raw else list(EXO_PORTS)
    provider = exo_provider(config)
    configured = provider.urls if provider is not None else []
    urls = [u.strip().rstrip("/") for u in given if u.strip()]
    urls += configured + [f"http://localhost:{port}" for port in ports]
    return list(dict.fromkeys(urls))


@dataclass
class ExoFinding:
    url: str
    answered: bool  # an Exo API answered
    api_line: str | None = None  # "v1" | "legacy"
    detail: str = ""  # what the user reads: "v1 API, 1 node, 2 models placed" or why not
    models: list[str] = field(default_factory=list)


def _describe(result: ProbeResult) -> str:
    if not result.reachable:
        return result.problem or "no answer"
    if result.api_line is None:
        return result.problem or "answered, but not as Exo"
    parts = [f"{result.api_line} API"]
    if result.nodes is not None:
        parts.append(f"{result.nodes} node{'s' if result.nodes != 1 else ''}")
    if result.api_line == "v1":
        parts.append(f"{len(result.models)} model{'s' if len(result.models) != 1 else ''} placed")
    else:
        parts.append(f"{len(result.models)} model cards")
    if result.problem:
        parts.append(result.problem)
    return ", ".join(parts)


def probe_exo(config: Config, urls: list[str]) -> list[ExoFinding]:
    """Ask each URL at once whether an Exo API answers (within the probes' deadlines)."""
    from exobridge.core import parallel, provider_status
    from exobridge.core.errors import ProxyError
    from exobridge.core.provider_status import RUN_SECONDS

    provider = exo_provider(config)
    if provider is None:
        return [ExoFinding(url, False, detail="no provider of an Exo kind is configured") for url in urls]

    def probe(url: str) -> ExoFinding:
        planned = replace(provider, urls=[url], enabled=True)
        result = provider_status.probe_provider(planned, url, read_timeout=PROBE_READ_TIMEOUT)
        answered = result.api_line is not None
        return ExoFinding(url, answered, result.api_line, _describe(result), list(result.models))

    outcomes = parallel.run_each(probe, urls, timeout=RUN_SECONDS, name=lambda url: url)
    found: list[ExoFinding] = []
    for url, outcome in zip(urls, outcomes, strict=True):
        if outcome.ok and isinstance(outcome.value, ExoFinding):
            found.append(outcome.value)
        elif isinstance(outcome.error, ProxyError):
            raise outcome.error  # a broken proxy setting is a config error (exit 4), as in every command
        else:
            reason = f"did not finish within {RUN_SECONDS:g} s" if outcome.timed_out else str(outcome.error)
            found.append(ExoFinding(url, False, detail=reason))
    return found


@dataclass
class KeyCheck:
    valid: bool | None  # True accepted, False rejected, None could not tell
    detail: str


def check_key(provider: ProviderConfig, key: str) -> KeyCheck:
    """Ask the provider's key-check endpoint (its status probe: OpenRouter `GET /key`, else its model list
    with the key) whether `key` is accepted. The key goes to this provider's own URL only."""
    from exobridge.core import keys, provider_status

    result = provider_status.probe_provider(
        replace(provider, enabled=True),
        provider.url,
        keys.ResolvedKey(key, keys.KeySource.CLI),
        read_timeout=PROBE_READ_TIMEOUT,
    )
    if result.key_valid is True:
        label = f" ({result.key_label})" if result.key_label else ""
        extra = f"; {result.problem}" if result.problem else ""
        return KeyCheck(True, f"accepted{label}{extra}")
    if result.key_valid is False:
        problem = result.problem or "not accepted"
        status = f"HTTP {result.status}: " if result.status and str(result.status) not in problem else ""
        return KeyCheck(False, f"rejected ({status}{problem})")
    return KeyCheck(None, f"could not be checked ({result.problem or 'no answer'})")


@dataclass
class NewProvider:
    name: str
    kind: str
    url: str
    models: ModelPlan


@dataclass
class SetupPlan:
    """Everything setup will write, collected before anything is written."""

    settings: dict[str, str] = field(default_factory=dict)  # dotted config key -> value as `config set` takes it
    enable: list[str] = field(default_factory=list)  # providers to turn on
    added: list[NewProvider] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # provider -> key

    def empty(self) -> bool:
        return not (self.settings or self.enable or self.added or self.keys)


@dataclass
class Written:
    config_path: Path | None = None
    config_lines: list[str] = field(default_factory=list)
    keys_path: Path | None = None
    key_lines: list[str] = field(default_factory=list)


def write_plan(plan: SetupPlan) -> Written:
    """Write `plan`: one locked, validated, atomic config edit, then one keys-file write (0600)."""
    import json

    from exobridge.core import (
        config_document,
        config_file,
        config_keys,
        keys_file,
        paths,
        provider_admin,
        provider_check,
    )
    from exobridge.core.secrets import mask

    written = Written()
    if plan.settings or plan.enable or plan.added:
        lines: list[str] = []

        def mutate(doc: Any) -> None:
            lines.clear()
            path = paths.config_path()
            for new in plan.added:
                config = config_document.document_config(doc, path)
                priority = provider_admin.add_provider(doc, config, new.name, new.kind, [new.url])
                lines.append(f"added provider {new.name} ({new.kind}, {new.url}, priority {priority})")
                provider_check.apply_models(doc, new.models)
                lines.extend(f"set {key} = {json.dumps(value)}" for key, value in new.models.settings())
            for name in plan.enable:
                provider_admin.set_enabled(doc, config_document.document_config(doc, path), name, True)
                lines.append(f"enabled {name}")
            for dotted, raw in plan.settings.items():
                resolved = config_keys.resolve_key(dotted, config_document.document_config(doc, path))
                typed = config_keys.coerce(resolved, raw)
                config_document.set_in_document(doc, resolved.parts, typed)
                lines.append(f"set {resolved.dotted} = {json.dumps(typed, ensure_ascii=False)}")

        written.config_path = config_file.edit_config(mutate)
        written.config_lines = lines
    if plan.keys:
        cleaned = {name: keys_file.clean_key(key) for name, key in plan.keys.items()}
        written.keys_path = keys_file.set_keys(cleaned)
        written.key_lines = [f"stored {mask(key)} for {name}" for name, key in cleaned.items()]
    return written


def servable_models(config: Config, local: Mapping[str, list[str]], keyed: list[str]) -> list[tuple[str, list[str]]]:
    """Logical names some enabled provider can serve now, with who: `local` maps a provider to the ids it
    serves (Exo found, endpoints added); `keyed` lists providers with a usable key (every name their
    table column has). Local ones first, then by table order."""
    from exobridge.core import model_names, model_targets, provider_check

    table = model_targets.table(config)
    serving: dict[str, list[str]] = {}
    for name, served in local.items():
        matched = model_names.match_served(served)
        for logical in matched:
            serving.setdefault(logical, []).append(name)
        for logical, ids in table.items():
            if ids.get(name) in served:
                serving.setdefault(logical, []).append(name)
    for name in keyed:
        provider = config.providers.get(name)
        if provider is None:
            continue
        columns = provider_check.builtin_columns(provider)
        for logical, ids in table.items():
            if any(ids.get(column) for column in columns):
                serving.setdefault(logical, []).append(name)
    local_first = sorted(serving.items(), key=lambda item: not any(p in local for p in item[1]))
    return [(logical, list(dict.fromkeys(names))) for logical, names in local_first]
