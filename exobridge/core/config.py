"""Configuration: embedded defaults refined by the user's TOML file and the environment.

The file does not have to repeat the defaults: a table with a default provider's name changes only the keys
it names, `enabled = false` turns a default off, and new names add providers.
"""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from exobridge.core import paths

KINDS = ("exo", "openrouter", "huggingface", "openai")

DEFAULTS: dict[str, Any] = {
    "default_model": "llama-3.2-3b",
    "providers": {
        "exo": {"kind": "exo", "url": "http://localhost:52415", "priority": 0},
        "openrouter": {
            "kind": "openrouter",
            "url": "https://openrouter.ai/api/v1",
            "key_env": "OPENROUTER_API_KEY",
            "priority": 1,
        },
        "huggingface": {
            "kind": "huggingface",
            "url": "https://router.huggingface.co/v1",
            "key_env": "HF_TOKEN",
            "priority": 2,
        },
    },
    "models": {},
}

# connect, first token, idle (seconds). A dead local Exo must cost almost nothing; clouds get more slack.
KIND_TIMEOUTS: dict[str, tuple[float, float, float]] = {
    "exo": (1.0, 60.0, 30.0),
    "openrouter": (5.0, 60.0, 60.0),
    "huggingface": (5.0, 60.0, 60.0),
    "openai": (5.0, 60.0, 60.0),
}

PROVIDER_KEYS = {
    "kind",
    "url",
    "urls",
    "priority",
    "enabled",
    "key_env",
    "connect_timeout",
    "first_token_timeout",
    "idle_timeout",
    "headers",
    "cooldown",
}
TOP_LEVEL_KEYS = {"default_model", "providers", "models"}
EXO_URL_ENV = "EXOBRIDGE_EXO_URL"


class ConfigError(Exception):
    """A config that cannot be used. `str()` is one line naming the file, the key or line, and the fault."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source = source
        self.where = where
        self.problem = problem
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


@dataclass
class ProviderConfig:
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

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def key_envs(self) -> list[str]:
        """Environment variables that may hold this provider's key, most specific first."""
        if not self.key_env:
            return []
        names = [self.key_env]
        if self.kind == "huggingface" and self.key_env == "HF_TOKEN":
            names.append("HUGGING_FACE_HUB_TOKEN")
        return names


@dataclass
class Config:
    default_model: str
    providers: dict[str, ProviderConfig]
    models: dict[str, dict[str, str]]
    path: Path
    file_exists: bool
    sources: dict[str, str] = field(default_factory=dict)
    unknown_keys: list[str] = field(default_factory=list)

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


def _check_url(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(source, where, f"expected a URL string, got {_describe(value)}")
    if not is_http_url(value):
        raise ConfigError(source, where, f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def is_http_url(value: str) -> bool:
    """An http(s) URL with a host and a valid port (`http://[::1` and `:99999` are not)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


_HEADER_NAME_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def header_problem(name: str, value: str) -> str | None:
    """Why an HTTP header cannot be sent as configured (HTTP allows ASCII only, no line breaks), or None."""
    if not name or not all(char in _HEADER_NAME_CHARS for char in name):
        return f"bad header name {name!r}: use ASCII letters, digits and - (e.g. X-Title)"
    if not all(char == "\t" or " " <= char <= "~" for char in value):
        return f"header {name}: the value must be ASCII text on one line"
    return None


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _number(raw: dict[str, Any], key: str, default: float, source: str, where: str, zero_ok: bool = False) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (value == 0 and not zero_ok):
        what = "a number of seconds (0 or more)" if zero_ok else "a positive number of seconds"
        raise ConfigError(source, f"{where}.{key}", f"expected {what}, got {value!r}")
    return float(value)


def _provider(name: str, raw: dict[str, Any], source: str, next_priority: int) -> ProviderConfig:
    where = f"providers.{name}"
    kind = raw.get("kind", name if name in KINDS else None)
    if kind is None:
        raise ConfigError(source, where, f"missing 'kind' (one of {', '.join(KINDS)})")
    if kind not in KINDS:
        raise ConfigError(source, f"{where}.kind", f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if "urls" in raw:
        urls_raw = raw["urls"]
        if not isinstance(urls_raw, list) or not urls_raw:
            raise ConfigError(source, f"{where}.urls", "expected a non-empty list of URLs")
        urls = [_check_url(u, source, f"{where}.urls") for u in urls_raw]
    elif "url" in raw:
        urls = [_check_url(raw["url"], source, f"{where}.url")]
    else:
        raise ConfigError(source, where, "missing 'url'")
    priority = raw.get("priority", next_priority)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigError(source, f"{where}.priority", f"expected an integer, got {priority!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(source, f"{where}.enabled", f"expected true or false, got {enabled!r}")
    key_env = raw.get("key_env")
    if key_env is not None and (not isinstance(key_env, str) or not key_env):
        raise ConfigError(source, f"{where}.key_env", f"expected an environment variable name, got {key_env!r}")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(source, f"{where}.headers", "expected a table of string values")
    for header, value in headers.items():
        problem = header_problem(header, value)
        if problem:
            raise ConfigError(source, f"{where}.headers", problem)
    connect, first, idle = KIND_TIMEOUTS[kind]
    cooldown = raw.get("cooldown")
    if cooldown is not None:
        cooldown = _number(raw, "cooldown", 0, source, where, zero_ok=True)  # 0: never cool down
    return ProviderConfig(
        name=name,
        kind=kind,
        urls=urls,
        priority=priority,
        enabled=enabled,
        key_env=key_env,
        connect_timeout=_number(raw, "connect_timeout", connect, source, where),
        first_token_timeout=_number(raw, "first_token_timeout", first, source, where),
        idle_timeout=_number(raw, "idle_timeout", idle, source, where),
        headers=dict(headers),
        cooldown=cooldown,
    )


PARSED_CACHE_VERSION = 1


def _parsed_cache() -> Path:
    return paths.cache_dir() / "config-parsed.marshal"


def _cached_parse(path: Path, raw: bytes) -> dict[str, Any] | None:
    """The parse of exactly these bytes, if an earlier run stored it. Saves importing tomllib (whose
    regexes cost milliseconds) on every run and every TAB while the file is unchanged."""
    import marshal

    try:
        version, source, cached_raw, data = marshal.loads(_parsed_cache().read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
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
    """The config file's bytes, or None when it does not exist; unreadable files are ConfigErrors."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(str(path), "", "permission denied") from None
    except OSError as exc:  # a parent that is a file, an I/O error, a name too long …
        raise ConfigError(str(path), "", f"cannot read ({exc.strerror or type(exc).__name__})") from None


def decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text (byte {exc.start})") from None


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
    _store_parse(path, raw, data)
    return data


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

    exo_override = env.get(EXO_URL_ENV, "").strip()
    if exo_override:
        urls = [
            _check_url(u.strip(), f"environment {EXO_URL_ENV}", "value") for u in exo_override.split(",") if u.strip()
        ]
        for provider in providers.values():
            if provider.kind == "exo":
                provider.urls = urls
                sources[f"providers.{provider.name}.url"] = f"env {EXO_URL_ENV}"

    models: dict[str, dict[str, str]] = {}
    for logical, table in merged.get("models", {}).items():
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ConfigError(source, f'models."{logical}"', 'expected a table of provider = "model id"')
        models[logical] = dict(table)

    return Config(
        default_model=default_model,
        providers=providers,
        models=models,
        path=path,
        file_exists=raw_file is not None,
        sources=sources,
        unknown_keys=unknown,
    )


def load(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    path = paths.config_path() if path is None else path
    return build(read_file(path), path, env)
