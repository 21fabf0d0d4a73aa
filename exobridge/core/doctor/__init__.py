"""`exobridge doctor` as pure checks: each finds one kind of trouble and says the one-line fix.

Modules, one job each:
- `results`: `Status`, `CheckResult`, `Report` (exit 0 / 1, or 4 when the config or keys file cannot be read);
- `runner`: checks as jobs on core/parallel, a crash or an overrun reported as a failed check;
- `environment`: Python, version, paths, and whether the files and folders holding keys really are private;
- `configuration`: the config and keys file load, unknown keys, enabled providers, priorities, default model;
- `provider_checks`: each provider by its kind's `status_probe` strategy (reach, key, credits, model placed);
- `network`: whether a local server would be reached through a proxy (httpx's own rule, core/proxies);
- `budget`: each `[budget]` limit with what was spent and what is left today / this month (the history file).

`diagnose()` runs in two stages whose inputs are explicit: first every independent check at once (the provider
checks return `ProviderFacts`), then the default-model check, given those facts. Both stages share one
wall-clock deadline (`doctor_deadline`; the last stage reads no network and gets at least 1 s more): a check
still running then fails with "did not finish within N s" and is left behind on its daemon thread, never
joined, so `doctor` always ends within its bound. Nothing here spends money:
probes only GET health, state, key and list routes.

Knobs for tests and odd setups: `EXOBRIDGE_DOCTOR_EXO_PORTS` (comma-separated ports tried when a cluster node
does not answer at its configured url; default 52415 and 8000, minus the configured one) and
`EXOBRIDGE_DOCTOR_DEADLINE` (seconds; replaces the computed bound).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from exobridge.core import parallel
from exobridge.core.doctor import budget, configuration, environment, network
from exobridge.core.doctor.configuration import ProviderFacts, check_default_model
from exobridge.core.doctor.provider_checks import (
    EXO_PORTS,
    EXO_PORTS_ENV,
    PROBE_READ_TIMEOUT,
    ProviderChecks,
    ProviderVerdict,
    cluster_candidate_ports,
    exo_candidate_ports,
    with_port,
)
from exobridge.core.doctor.results import FAIL, OK, WARN, CheckResult, Report, Section, Status, section_rank
from exobridge.core.doctor.runner import Check, run_checks

if TYPE_CHECKING:
    from exobridge.core.config import Config, ProviderConfig
    from exobridge.core.errors import ConfigError
    from exobridge.core.keys import ResolvedKey

__all__ = [
    "DEADLINE_ENV",
    "EXO_PORTS",
    "EXO_PORTS_ENV",
    "FAIL",
    "OK",
    "PROBE_READ_TIMEOUT",
    "WARN",
    "Check",
    "CheckResult",
    "Report",
    "Section",
    "Status",
    "cluster_candidate_ports",
    "diagnose",
    "doctor_deadline",
    "exo_candidate_ports",
    "run_checks",
    "with_port",
]

DEADLINE_ENV = "EXOBRIDGE_DOCTOR_DEADLINE"
LAST_STAGE_SECONDS = 1.0  # the default-model verdict reads no network: it always gets this long


def doctor_deadline(config: Config | None, read_timeout: float, env: Mapping[str, str]) -> float:
    """The wall-clock bound of the whole doctor (both stages): long enough for the slowest probe (its connect
    timeout and a few short reads), never the sum of all of them. `EXOBRIDGE_DOCTOR_DEADLINE` replaces it."""
    raw = env.get(DEADLINE_ENV, "").strip()
    try:
        explicit = float(raw) if raw else None
    except ValueError:
        explicit = None
    if explicit is not None and 0 < explicit < 3600:
        return explicit
    connect = max((p.connect_timeout for p in config.ordered()), default=5.0) if config else 5.0
    return connect + 3 * read_timeout + 2.0


def _load(load: Callable[[], Config] | None) -> tuple[Config | None, ConfigError | None]:
    from exobridge.core import config as config_mod
    from exobridge.core.errors import ConfigError

    try:
        return (load or config_mod.load)(), None
    except ConfigError as exc:
        return None, exc


def _read_keys() -> tuple[dict[str, str], ConfigError | None]:
    """The keys file, or the error naming its file and line (never taken for "no key")."""
    from exobridge.core import keys
    from exobridge.core.errors import ConfigError

    try:
        return keys.read_keys_file(), None
    except ConfigError as exc:
        return {}, exc


def diagnose(
    strict: bool = False,
    env: Mapping[str, str] | None = None,
    extra_checks: list[Check] | None = None,
    load: Callable[[], Config] | None = None,
    read_timeout: float = PROBE_READ_TIMEOUT,
    deadline: float | None = None,
) -> Report:
    """Every check, concurrently; the report in a fixed order (Environment, Config, each Provider, Network,
    Budget when one is set)."""
    from exobridge.core import keys, paths

    env = dict(os.environ) if env is None else dict(env)
    config, config_error = _load(load)
    stored, keys_error = _read_keys()
    proxy_error = _proxy_problem(env)
    bound = parallel.Deadline(deadline if deadline is not None else doctor_deadline(config, read_timeout, env))
    holds_keys = config is not None and any(p.headers for p in config.providers.values())
    env_section, config_section = Section.ENVIRONMENT, Section.CONFIG
    checks = [
        Check("env.python", env_section, environment.check_python),
        Check("env.version", env_section, environment.check_version),
        Check("env.paths", env_section, environment.check_paths),
        Check("env.permissions", env_section, lambda: environment.check_permissions(holds_keys)),
        Check("env.folders", env_section, environment.check_folders),
        Check("config.parse", config_section, lambda: configuration.check_parse(config, config_error)),
        Check(
            "config.keys_file",
            config_section,
            lambda: configuration.check_keys_file(keys_error, paths.keys_path()),
        ),
    ]
    verdicts: dict[str, ProviderVerdict] = {}
    if config is not None:
        loaded = config
        checks += [
            Check("config.unknown_keys", config_section, lambda: configuration.check_unknown_keys(loaded)),
            Check("config.providers", config_section, lambda: configuration.check_providers_enabled(loaded)),
            Check("config.priorities", config_section, lambda: configuration.check_priorities(loaded)),
        ]
        provider_checks = ProviderChecks(loaded, env, read_timeout, bound)
        for provider in loaded.ordered():
            key = keys.resolve(provider, env=env, stored=stored)
            checks.append(
                Check(
                    f"provider.{provider.name}.reach",
                    f"{Section.PROVIDER} {provider.name}",
                    _provider_job(provider_checks, provider, key, verdicts),
                )
            )
        checks.append(Check("network.proxy", Section.NETWORK, lambda: network.check_proxy(loaded, env)))
        checks.append(Check("budget", Section.BUDGET, lambda: budget.check_budgets(loaded, env)))
    checks += extra_checks or []
    results = run_checks(checks, bound)
    if config is not None:
        facts = {name: verdict.facts for name, verdict in dict(verdicts).items()}
        for provider in config.ordered():  # a provider whose check did not finish cannot serve anything
            facts.setdefault(
                provider.name,
                ProviderFacts(provider.name, usable=False, why_not=f"{provider.name}: not checked in time"),
            )
        loaded = config
        last = Check("config.default_model", config_section, lambda: check_default_model(loaded, facts))
        results += run_checks([last], parallel.Deadline(max(bound.remaining() or 0.0, LAST_STAGE_SECONDS)))
    ordered = sorted(enumerate(results), key=lambda item: (section_rank(item[1].section), item[0]))
    fresh = (
        config is not None
        and not config.file_exists
        and not stored
        and not any(r.id == "config.default_model" and r.status == OK for r in results)
    )
    return Report(
        [r for _, r in ordered], strict=strict, config_error=config_error or keys_error or proxy_error, fresh=fresh
    )


def _proxy_problem(env: Mapping[str, str]) -> ConfigError | None:
    """A proxy variable httpx cannot use: every network check fails with it, and doctor ends with exit 4."""
    from exobridge.core import proxies
    from exobridge.core.errors import ProxyError

    try:
        proxies.validate(env)
    except ProxyError as exc:
        return exc
    return None


def _provider_job(
    checks: ProviderChecks, provider: ProviderConfig, key: ResolvedKey, verdicts: dict[str, ProviderVerdict]
) -> Callable[[], list[CheckResult]]:
    """The check of one provider; its facts land in `verdicts` for the default-model stage."""

    def run() -> list[CheckResult]:
        verdict = checks.check(provider, key)
        verdicts[provider.name] = verdict
        return verdict.results

    return run
