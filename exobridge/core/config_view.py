"""The effective config key by key, each value with where it came from (`config show`, `config get`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exobridge.core.config import Config, ProviderConfig
from exobridge.core.config_keys import KeyPath, format_key


@dataclass(frozen=True)
class Setting:
    key: str  # dotted, as `config get` takes it
    value: Any
    source: str  # default, file, env EXOBRIDGE_EXO_URL, built-in


def settings(config: Config) -> list[Setting]:
    """Every effective value with where it came from, in a stable order (providers by priority)."""

    def source(*dotted: str) -> str:
        for key in dotted:
            if key in config.sources:
                return config.sources[key]
        return "default"

    rows = [Setting("default_model", config.default_model, source("default_model"))]
    rows.append(Setting("log", config.log, source("log")))
    rows.append(Setting("markdown", config.markdown, source("markdown")))
    for p in config.ordered(include_disabled=True):
        base = f"providers.{p.name}"
        rows.append(Setting(f"{base}.kind", p.kind, source(f"{base}.kind")))
        url_source = _url_source(config, p.name)
        if len(p.urls) > 1 or (f"{base}.urls" in config.sources and not url_source.startswith("env ")):
            rows.append(Setting(f"{base}.urls", list(p.urls), url_source))
        else:
            rows.append(Setting(f"{base}.url", p.url, url_source))
        rows.append(Setting(f"{base}.priority", p.priority, source(f"{base}.priority")))
        rows.append(Setting(f"{base}.enabled", p.enabled, source(f"{base}.enabled")))
        if p.key_env:
            rows.append(Setting(f"{base}.key_env", p.key_env, source(f"{base}.key_env")))
        for name in ("connect_timeout", "first_token_timeout", "idle_timeout"):
            rows.append(Setting(f"{base}.{name}", getattr(p, name), source(f"{base}.{name}")))
        if p.cooldown is not None:
            rows.append(Setting(f"{base}.cooldown", p.cooldown, source(f"{base}.cooldown")))
        for header, value in p.headers.items():
            dotted = format_key(("providers", p.name, "headers", header))
            rows.append(Setting(dotted, value, source(f"{base}.headers.{header}", f"{base}.headers")))
    for model, ids in config.models.items():
        for provider, model_id in ids.items():
            rows.append(Setting(format_key(("models", model, provider)), model_id, "file"))
    return rows


def _url_source(config: Config, name: str) -> str:
    """`url` and `urls` are one setting: the environment wins, then whichever the file wrote."""
    url = config.sources.get(f"providers.{name}.url", "default")
    if url.startswith("env "):
        return url
    return config.sources.get(f"providers.{name}.urls", url)


def effective_value(key: KeyPath, config: Config) -> tuple[Any, str]:
    """(value, source) of a resolved key in the effective config; KeyError when it has none."""
    from exobridge.core.model_targets import table as model_table

    parts = key.parts
    if parts == ("default_model",):
        return config.default_model, config.sources.get("default_model", "default")
    if parts == ("markdown",):
        return config.markdown, config.sources.get("markdown", "default")
    if parts == ("log",):
        return config.log, config.sources.get("log", "default")
    if parts[0] == "providers":
        if len(parts) == 1:
            return {name: _provider_dict(p) for name, p in config.providers.items()}, "effective"
        provider = config.providers[parts[1]]
        data = _provider_dict(provider)
        if len(parts) == 2:
            return data, "effective"
        field = parts[2]
        dotted = f"providers.{parts[1]}.{field}"
        src = _url_source(config, parts[1]) if field in ("url", "urls") else config.sources.get(dotted)
        if field == "headers" and len(parts) == 3:  # sources are kept per header
            src = next((v for k, v in config.sources.items() if k.startswith(f"{dotted}.") and v != "default"), src)
        if len(parts) == 4:
            return provider.headers[parts[3]], config.sources.get(f"{dotted}.{parts[3]}", "default")
        value = data[field]
        if value is None:
            raise KeyError(key.dotted)
        return value, src or "default"
    if parts[0] == "models":
        merged = model_table(config)
        if len(parts) == 1:
            return merged, "effective"
        ids = merged[parts[1]]
        if len(parts) == 2:
            return ids, "effective"
        user = config.models.get(parts[1], {})
        return ids[parts[2]], "file" if parts[2] in user else "built-in"
    raise KeyError(key.dotted)


def _provider_dict(p: ProviderConfig) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "url": p.url,
        "urls": list(p.urls),
        "priority": p.priority,
        "enabled": p.enabled,
        "key_env": p.key_env,
        "connect_timeout": p.connect_timeout,
        "first_token_timeout": p.first_token_timeout,
        "idle_timeout": p.idle_timeout,
        "headers": dict(p.headers),
        "cooldown": p.cooldown,
    }
