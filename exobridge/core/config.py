"""Configuration: embedded defaults refined by the user's TOML file and the environment.

The file does not have to repeat the defaults: a table with a default provider's name changes only the keys
it names, `enabled = false` turns a default off, and new names add providers.

Every provider value is checked by the one schema (core/config_schema.py), the same check `config set`
uses; kind facts (default URL, timeouts, key variables, the URL override variable) come from the kind
classes (core/providers). Errors are `errors.ConfigError` (exit 4), one line naming file, key and fault.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exobridge.core import paths
from exobridge.core.config_schema import (
    PROVIDER_FIELDS,
    PROVIDER_KEYS,
    TOP_LEVEL_FIELDS,
    TOP_LEVEL_KEYS,
    FieldProblem,
    check,
    header_problem,
    is_http_url,
)
from exobridge.core.errors import ConfigError

__all__ = [
    "DEFAULTS",
    "EXO_URL_ENV",
    "PROVIDER_KEYS",
    "TOP_LEVEL_KEYS",
    "Config",
    "ConfigError",
    "ProviderConfig",
    "build",
    "header_problem",
    "is_http_url",
    "load",
]

# The built-in providers: their kind and order. URL and key variable come from the kind class.
BUILTIN_PROVIDERS = (("exo", 0), ("openrouter", 1), ("huggingface", 2))
DEFAULT_MODEL = "llama-3.2-3b"
EXO_URL_ENV = "EXOBRIDGE_EXO_URL"  # Exo's `url_env` (kept for callers that name it)


def _builtin_defaults() -> dict[str, Any]:
    from exobridge.core import providers

    table: dict[str, Any] = {}
    for name, priority in BUILTIN_PROVIDERS:
        kind = providers.kind_class(name)
        entry: dict[str, Any] = {"kind": name, "url": kind.default_url}
        if kind.default_key_env:
            entry["key_env"] = kind.default_key_env
        entry["priority"] = priority
        table[name] = entry
    return {"default_model": DEFAULT_MODEL, "providers": table, "models": {}}


DEFAULTS: dict[str, Any] = _builtin_defaults()


@dataclass
class ProviderConfig:
    """One provider as configured: kind, nodes, priority, key variable, timeouts, headers and load policy."""

    name: str
    kind: str
    urls: list[str]
    priority: int
    enabled: bool = True
    key_env: str | None = None
    connect_timeout: float = 5.0
    first_token_timeout: float = 60.0
    idle_timeout: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)
    cooldown: float | None = None
    load: str = "ask"  # Exo: a model that is not loaded: "ask" | "auto" | "never" (docs/models.md)
    load_never: tuple[str, ...] = ()  # Exo, load = "ask": never offer to load these models
    model: str | None = None  # sent when the requested logical name has no id for this provider

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def key_envs(self) -> list[str]:
        """Environment variables that may hold this provider's key, most specific first."""
        if not self.key_env:
            return []
        from exobridge.core import providers

        return list(providers.kind_class(self.kind).key_envs_for(self.key_env))


@dataclass
class Config:
    """The effective configuration: defaults, the file and the environment, merged and validated."""

    default_model: str
    providers: dict[str, ProviderConfig]
    models: dict[str, dict[str, str]]
    path: Path
    file_exists: bool
    sources: dict[str, str] = field(default_factory=dict)
    unknown_keys: list[str] = field(default_factory=list)
    log: bool = True  # false: chat and serve keep no history (docs/history.md)
    budget: Any = None  # core.budget.Budget from `[budget]` (None: no limits)
    markdown: bool = False  # the interactive session renders finished replies as Markdown (chat --no-markdown)

    def unknown_provider(self, name: str) -> str:
        """`unknown provider 'opnrouter' (did you mean openrouter? configured: exo, openrouter, …)`."""
        import difflib

        near = difflib.get_close_matches(name, list(self.providers), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        return f"unknown provider {name!r} ({hint}configured: {', '.join(self.providers) or 'none'})"

    def ordered(self, include_disabled: bool = False) -> list[ProviderConfig]:
        """Providers by priority, then by name, so equal priorities are still deterministic."""
        chosen = [p for p in self.providers.values() if include_disabled or p.enabled]
        return sorted(chosen, key=lambda p: (p.priority, p.name))


def _merge(base: dict[str, Any], over: dict[str, Any], prefix: str, sources: dict[str, str], origin: str) -> None:
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "headers":
            _merge(base[key], value, f"{dotted}.", sources, origin)
        else:
            base[key] = copy.deepcopy(value)
            _record(dotted, value, sources, origin)


def _record(dotted: str, value: Any, sources: dict[str, str], origin: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _record(f"{dotted}.{key}", inner, sources, origin)
    else:
        sources[dotted] = origin


def _field(raw: dict[str, Any], key: str, source: str, where: str, default: Any = None) -> Any:
    """`raw[key]` checked against the schema (the same check `config set` uses), or `default`."""
    if key not in raw:
        return default
    try:
        return check(PROVIDER_FIELDS[key], raw[key])
    except FieldProblem as problem:
        raise ConfigError(source, f"{where}.{key}", str(problem)) from None


def _provider(name: str, raw: dict[str, Any], source: str, next_priority: int) -> ProviderConfig:
    from exobridge.core import providers

    where = f"providers.{name}"
    known = providers.kind_names()
    kind = raw.get("kind", name if name in known else None)
    if kind is None:
        raise ConfigError(source, where, f"missing 'kind' (one of {', '.join(known)})")
    kind = _field({"kind": kind}, "kind", source, where)
    if "urls" in raw:
        urls = _field(raw, "urls", source, where)
    elif "url" in raw:
        urls = [_field(raw, "url", source, where)]
    else:
        raise ConfigError(source, where, "missing 'url'")
    connect, first, idle = providers.kind_class(kind).default_timeouts
    return ProviderConfig(
        name=name,
        kind=kind,
        urls=urls,
        priority=_field(raw, "priority", source, where, next_priority),
        enabled=_field(raw, "enabled", source, where, True),
        key_env=_field(raw, "key_env", source, where),
        connect_timeout=float(_field(raw, "connect_timeout", source, where, connect)),
        first_token_timeout=float(_field(raw, "first_token_timeout", source, where, first)),
        idle_timeout=float(_field(raw, "idle_timeout", source, where, idle)),
        headers=_field(raw, "headers", source, where, {}),
        cooldown=None if raw.get("cooldown") is None else float(_field(raw, "cooldown", source, where)),
        load=_field(raw, "load", source, where, "ask"),
        load_never=tuple(_field(raw, "load_never", source, where, [])),
        model=_field(raw, "model", source, where),
    )


PARSED_CACHE_VERSION = 2


def _parsed_cache() -> Path:
    return paths.cache_dir() / "config-parsed.marshal"


def _cached_parse(path: Path, raw: bytes) -> dict[str, Any] | None:
    """The parse of exactly these bytes, if an earlier run stored it. Saves importing tomllib (whose
    regexes cost milliseconds) on every run and every TAB while the file is unchanged.

    The cache decides where keys are sent (it holds the URLs), so it is read only when this user alone could
    have written it (`cache.read_trusted`: a regular file owned by the user in a folder nobody else can
    write to), and only for the very bytes the config file holds now."""
    import marshal

    from exobridge.core.cache import read_trusted

    blob = read_trusted(_parsed_cache())
    if blob is None:
        return None
    try:
        version, source, cached_raw, data = marshal.loads(blob)
    except (ValueError, EOFError, TypeError):
        return None
    if version == PARSED_CACHE_VERSION and source == str(path) and cached_raw == raw and isinstance(data, dict):
        return data
    return None


def _store_parse(path: Path, raw: bytes, data: dict[str, Any]) -> None:
    import marshal

    from exobridge.core.files import write_atomic

    try:
        blob = marshal.dumps((PARSED_CACHE_VERSION, str(path), raw, data))
    except ValueError:  # TOML dates and times are not marshallable: just parse next time
        return
    with contextlib.suppress(OSError):
        write_atomic(_parsed_cache(), blob, mode=0o600)


def read_bytes(path: Path) -> bytes | None:
    """The config file's bytes, or None when it does not exist; unreadable files are ConfigErrors.
    A FIFO, device or folder is refused without blocking (files.read_regular)."""
    from exobridge.core import files

    try:
        return files.read_regular(path)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a directory, not a TOML file") from None
    except files.NotRegularFile as exc:
        raise ConfigError(str(path), "", f"{exc.strerror}") from None
    except PermissionError:
        raise ConfigError(str(path), "", "permission denied") from None
    except OSError as exc:  # a parent that is a file, an I/O error, a name too long …
        raise ConfigError(str(path), "", f"cannot read ({exc.strerror or type(exc).__name__})") from None


BOM = "\ufeff"


def decode(raw: bytes, path: Path) -> str:
    """The file's text; a UTF-8 byte-order mark (some Windows editors write one) is dropped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text (byte {exc.start})") from None
    return text[1:] if text.startswith(BOM) else text


def read_file(path: Path) -> dict[str, Any] | None:
    """The parsed file, or None when it does not exist. Parse errors name the file and line."""
    raw = read_bytes(path)
    if raw is None:
        return None
    cached = _cached_parse(path, raw)
    if cached is not None:
        return cached
    text = decode(raw, path)
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        # tomllib says "Invalid value (at line 3, column 9)"; put the position first, as the other errors do.
        if "(at line" in message:
            problem, _, position = message.rpartition(" (at ")
            raise ConfigError(str(path), position.rstrip(")"), problem) from None
        raise ConfigError(str(path), "", message) from None
    except RecursionError:
        raise ConfigError(str(path), "", "nested too deeply") from None
    _store_parse(path, raw, data)
    return data


def url_env_of(kind: str) -> str | None:
    """The environment variable that overrides the URLs of every provider of `kind` (Exo's
    EXOBRIDGE_EXO_URL), from the kind class's `url_env`."""
    from exobridge.core import providers

    return providers.kind_class(kind).url_env


def _apply_url_overrides(providers: dict[str, ProviderConfig], env: Mapping[str, str], sources: dict[str, str]) -> None:
    for provider in providers.values():
        variable = url_env_of(provider.kind)
        value = env.get(variable, "").strip() if variable else ""
        if not value:
            continue
        try:
            urls = check(PROVIDER_FIELDS["urls"], [u.strip() for u in value.split(",") if u.strip()])
        except FieldProblem as problem:
            raise ConfigError(f"environment {variable}", "value", str(problem)) from None
        provider.urls = urls
        sources[f"providers.{provider.name}.url"] = f"env {variable}"


def build(raw_file: dict[str, Any] | None, path: Path, env: dict[str, str] | None = None) -> Config:
    """Merge defaults, the parsed file and the environment into a validated Config."""
    env = os.environ if env is None else env
    source = str(path)
    merged = copy.deepcopy(DEFAULTS)
    sources: dict[str, str] = {}
    for key, value in DEFAULTS.items():
        _record(key, value, sources, "default")
    unknown: list[str] = []
    if raw_file:
        for key in raw_file:
            if key not in TOP_LEVEL_KEYS:
                unknown.append(key)
        for key in ("providers", "models"):
            if key in raw_file and not isinstance(raw_file[key], dict):
                raise ConfigError(source, key, "expected a table")
        for name, table in raw_file.get("providers", {}).items():
            if not isinstance(table, dict):
                raise ConfigError(source, f"providers.{name}", "expected a table")
            unknown.extend(f"providers.{name}.{k}" for k in table if k not in PROVIDER_KEYS)
            # A file that names `urls` replaces a default's `url` and the reverse, rather than keeping both.
            default = merged["providers"].get(name)
            if default is not None and ("url" in table or "urls" in table):
                default.pop("url", None)
                default.pop("urls", None)
        _merge(merged, raw_file, "", sources, "file")

    default_model = merged.get("default_model")
    if not isinstance(default_model, str) or not default_model.strip():
        raise ConfigError(source, "default_model", f"expected a model name, got {default_model!r}")

    providers: dict[str, ProviderConfig] = {}
    next_priority = 0
    for name, table in merged["providers"].items():
        provider = _provider(name, table, source, next_priority)
        providers[name] = provider
        next_priority = max(next_priority, provider.priority + 1)

    _apply_url_overrides(providers, env, sources)

    models: dict[str, dict[str, str]] = {}
    for logical, table in merged.get("models", {}).items():
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ConfigError(source, f'models."{logical}"', 'expected a table of provider = "model id"')
        models[logical] = dict(table)

    top_level: dict[str, bool] = {}
    for name, default in (("log", True), ("markdown", False)):
        try:
            top_level[name] = check(TOP_LEVEL_FIELDS[name], merged.get(name, default))
        except FieldProblem as problem:
            raise ConfigError(source, name, str(problem)) from None
    log, markdown = top_level["log"], top_level["markdown"]
    budget = None  # no `[budget]` table: no limits, and core/budget.py need not be loaded
    if merged.get("budget") is not None:
        from exobridge.core import budget as budget_mod

        try:
            budget = budget_mod.parse(merged["budget"])
        except budget_mod.BudgetProblem as problem:
            where, _, what = str(problem).partition(": ")
            raise ConfigError(source, where, what) from None

    return Config(
        default_model=default_model,
        providers=providers,
        models=models,
        path=path,
        file_exists=raw_file is not None,
        sources=sources,
        unknown_keys=unknown,
        log=log,
        budget=budget,
        markdown=markdown,
    )


def load(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    path = paths.config_path() if path is None else path
    return build(read_file(path), path, env)
