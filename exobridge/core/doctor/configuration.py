"""Config checks: it parses, no unknown keys, some provider is enabled, priorities do not tie, and (after the
provider checks, from what they found) the default model can be served."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exobridge.core.doctor.results import FAIL, OK, WARN, CheckResult, Section

if TYPE_CHECKING:
    from exobridge.core.config import Config
    from exobridge.core.errors import ConfigError

CONFIG = Section.CONFIG


@dataclass
class ProviderFacts:
    """What a provider's checks learnt that the default-model verdict needs."""

    name: str
    serves_default: bool | None = None  # None: unknown (its list was not read)
    usable: bool = True
    why_not: str | None = None


def check_parse(config: Config | None, error: ConfigError | None) -> list[CheckResult]:
    if error is not None:
        where = f" ({error.where})" if getattr(error, "where", "") else ""
        source = getattr(error, "source", "the config")
        return [
            CheckResult(
                "config.parse",
                CONFIG,
                FAIL,
                f"config does not load: {error}",
                f"fix{where} in {source}, or move the file away to start from the defaults",
            )
        ]
    assert config is not None
    if not config.file_exists:  # the Environment line "config … (not created yet …)" says it, once
        return []
    return [CheckResult("config.parse", CONFIG, OK, f"{config.path} parses")]


def check_keys_file(error: ConfigError | None, keys_path: Any) -> list[CheckResult]:
    """The keys file reads (a malformed one is never taken for "no key")."""
    if error is None:  # no file: the Environment line "keys file … (none)" says it, once
        return (
            [CheckResult("config.keys_file", CONFIG, OK, f"keys file {keys_path} reads")] if keys_path.exists() else []
        )
    return [
        CheckResult(
            "config.keys_file",
            CONFIG,
            FAIL,
            f"keys file does not load: {error}",
            f"fix the line it names in {keys_path}, or move the file away and run exobridge keys set again",
        )
    ]


def check_unknown_keys(config: Config) -> list[CheckResult]:
    if not config.unknown_keys:
        return [CheckResult("config.unknown_keys", CONFIG, OK, "no unknown keys")]
    names = ", ".join(config.unknown_keys)
    return [
        CheckResult(
            "config.unknown_keys",
            CONFIG,
            WARN,
            f"unknown keys are ignored: {names} (a typo?)",
            f"remove or rename {config.unknown_keys[0]} in {config.path}",
        )
    ]


def check_providers_enabled(config: Config) -> list[CheckResult]:
    enabled = config.ordered()
    if not enabled:
        first = next(iter(config.providers), "exo")
        return [
            CheckResult(
                "config.providers",
                CONFIG,
                FAIL,
                "no provider is enabled: every chat would fail",
                f"exobridge config set providers.{first}.enabled true",
            )
        ]
    order = " → ".join(p.name for p in enabled)
    return [CheckResult("config.providers", CONFIG, OK, f"routing order: {order}")]


def check_priorities(config: Config) -> list[CheckResult]:
    seen: dict[int, list[str]] = {}
    for provider in config.ordered():
        seen.setdefault(provider.priority, []).append(provider.name)
    clashes = {prio: names for prio, names in seen.items() if len(names) > 1}
    if not clashes:
        return [CheckResult("config.priorities", CONFIG, OK, "every enabled provider has its own priority")]
    prio, names = next(iter(sorted(clashes.items())))
    taken = {p.priority for p in config.providers.values()}
    free = next(n for n in range(prio + 1, prio + 100) if n not in taken)
    return [
        CheckResult(
            "config.priorities",
            CONFIG,
            WARN,
            f"{' and '.join(names)} share priority {prio}: the order between them is by name",
            f"exobridge config set providers.{names[-1]}.priority {free}",
        )
    ]


def default_targets(config: Config) -> list[Any]:
    from exobridge.core import model_targets

    return [t for t in model_targets.targets(config.default_model, config) if t.provider.enabled]


def check_default_model(config: Config, facts: dict[str, ProviderFacts]) -> list[CheckResult]:
    """Whether some enabled provider can serve `default_model` now: needs the provider checks' `facts`."""
    wanted = config.default_model
    with_id = [t for t in default_targets(config) if t.model is not None]
    if not with_id:
        return [
            CheckResult(
                "config.default_model",
                CONFIG,
                FAIL,
                f"default_model {wanted} has no id for any enabled provider: no provider has it",
                f"exobridge config set default_model <name from exobridge models>, or add "
                f'models."{wanted}".<provider> = "<id>" to {config.path}',
            )
        ]
    serving, reasons = [], []
    for target in with_id:
        known = facts.get(target.provider.name, ProviderFacts(target.provider.name))
        if known.usable and known.serves_default is not False:
            serving.append(target.provider.name)
        else:
            reasons.append(known.why_not or f"{target.provider.name}: does not list it")
    if serving:
        return [CheckResult("config.default_model", CONFIG, OK, f"default_model {wanted} → {', '.join(serving)}")]
    return [
        CheckResult(
            "config.default_model",
            CONFIG,
            FAIL,
            f"no enabled provider can serve default_model {wanted} now ({'; '.join(reasons)})",
            "exobridge config set default_model <name from exobridge models>, or fix the provider above",
        )
    ]
