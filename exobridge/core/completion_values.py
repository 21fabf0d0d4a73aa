"""Values that shell completion offers: provider names, model names, config keys.

Everything here reads local files only (the config file and the model-list cache); nothing touches the
network. Completion must never fail loudly, so every public function returns an empty list when the config
is broken or a file is unreadable, instead of raising.

Each function returns `Candidate`s: `(value, help)` tuples that Typer's `autocompletion=` hooks accept as
they are (the help text is shown by zsh and fish beside the value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

    from exobridge.core.config import Config

MODELS_CACHE = "models"


class Candidate(NamedTuple):
    value: str
    help: str = ""


def quiet_config() -> Config | None:
    """The effective config, or None when it cannot be loaded (any error: completion stays silent)."""
    try:
        from exobridge.core.config import load

        return load()
    except Exception:
        return None


def _config(config: Config | None) -> Config | None:
    return config if config is not None else quiet_config()


def _provider_help(config: Config, name: str) -> str:
    provider = config.providers[name]
    state = "" if provider.enabled else ", disabled"
    return f"{provider.kind} provider{state}"


def provider_names(incomplete: str = "", config: Config | None = None) -> list[Candidate]:
    """Configured provider names starting with `incomplete`, in priority order (disabled ones included).

    For `chat -p/--provider` and `keys set|get|remove`. Reads the config file only; a broken or unreadable
    config gives `[]`.
    """
    try:
        config = _config(config)
        if config is None:
            return []
        return [
            Candidate(p.name, _provider_help(config, p.name))
            for p in config.ordered(include_disabled=True)
            if p.name.startswith(incomplete)
        ]
    except Exception:
        return []


def is_completion_word(value: object) -> bool:
    """A non-empty string a shell can offer as one word: printable, no whitespace (no escape sequences)."""
    return isinstance(value, str) and value.isprintable() and bool(value) and not any(c.isspace() for c in value)


def cached_model_ids(config: Config, cache_file: Path | None = None) -> dict[str, list[str]]:
    """Model ids per configured provider from the model-list cache.

    The cache is `JsonCache("models")` (file `<cache_dir>/models.json`), written by `exobridge models`:
    key = provider name, entry value = a list of objects with at least "id". It is read here in one pass,
    through `cache.read_trusted` (a file another user could have written, or a huge one, is not read). Stale
    entries still count (a name that existed yesterday is a good suggestion); malformed entries, and ids no
    shell could take as one word (whitespace, control characters, escape sequences), are skipped; an
    unreadable file is empty.
    """
    import json

    from exobridge.core import cache, paths

    if cache_file is None:
        cache_file = paths.cache_dir() / f"{MODELS_CACHE}.json"
    raw = cache.read_trusted(cache_file)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, list[str]] = {}
    for provider in config.ordered(include_disabled=True):
        entry = data.get(provider.name)
        entries: Any = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(entries, list):
            continue
        ids = {e["id"] for e in entries if isinstance(e, dict) and is_completion_word(e.get("id"))}
        found[provider.name] = sorted(ids)
    return found


def _table_names_for(config: Config, provider: str, table: dict[str, dict[str, str]]) -> list[str]:
    """Logical model names that `provider:<name>` resolves to a real model id."""
    from exobridge.core import model_targets

    names = []
    for name in table:
        targets = model_targets.targets(f"{provider}:{name}", config)
        if targets and targets[0].model is not None and targets[0].reason is None:
            names.append(name)
    return names


def model_names(incomplete: str = "", config: Config | None = None, cache_file: Path | None = None) -> list[Candidate]:
    """Values for `-m/--model` that start with `incomplete`.

    - `provider:rest` (a configured provider before the colon): `provider:<id>` for the ids cached for that
      provider and `provider:<logical name>` for the model-table names that provider has an id for.
    - otherwise: the logical names of the model table (built-in + the config's `[models]`), and `provider:`
      for each configured provider. Once at least one character is typed, the cached ids of every provider
      are offered too (an empty word would otherwise list hundreds of ids).

    Local files only; any error gives `[]`.
    """
    try:
        config = _config(config)
        if config is None:
            return []
        from exobridge.core import model_targets

        table = model_targets.table(config)
        head, sep, _ = incomplete.partition(":")
        result: list[Candidate] = []
        seen: set[str] = set()

        def add(value: str, help: str) -> None:
            if value.startswith(incomplete) and value not in seen:
                seen.add(value)
                result.append(Candidate(value, help))

        if sep and head in config.providers:
            for name in _table_names_for(config, head, table):
                add(f"{head}:{name}", "model table")
            for model_id in cached_model_ids(config, cache_file).get(head, []):
                add(f"{head}:{model_id}", f"listed by {head}")
            return result

        for name in table:
            add(name, "model table")
        for provider in config.ordered(include_disabled=True):
            add(f"{provider.name}:", f"only {provider.name}: {provider.name}:<model id>")
        if incomplete:
            for provider_name, ids in cached_model_ids(config, cache_file).items():
                for model_id in ids:
                    add(model_id, f"listed by {provider_name}")
        return result
    except Exception:
        return []


def config_keys(incomplete: str = "", config: Config | None = None) -> list[Candidate]:
    """Dotted config keys starting with `incomplete`, for `config get|set|unset`.

    `default_model`, `markdown`, `providers.<name>.<setting>` for every configured provider and every setting a provider
    table accepts, and keys the file already sets below `providers.` (e.g. `providers.exo.headers.X`).
    `models.*` keys are left out: their names often need TOML quoting (`models."qwen-2.5-7b".exo`), which
    does not survive a shell word. Local files only; any error gives `[]`.
    """
    try:
        config = _config(config)
        if config is None:
            return []
        from exobridge.core.config import PROVIDER_KEYS
        from exobridge.core.config_schema import TOP_LEVEL_FIELDS

        keys: dict[str, str] = {"default_model": "model used when -m is not given"}
        keys.update({name: field.doc for name, field in TOP_LEVEL_FIELDS.items()})  # markdown
        for provider in config.ordered(include_disabled=True):
            for setting in sorted(PROVIDER_KEYS):
                keys.setdefault(f"providers.{provider.name}.{setting}", "")
        for dotted, origin in sorted(config.sources.items()):
            if dotted.startswith("providers.") and origin == "file":
                keys.setdefault(dotted, "")
        return [Candidate(key, help) for key, help in keys.items() if key.startswith(incomplete)]
    except Exception:
        return []
