"""Safe edits of the config file: keep what the user wrote, never lose a concurrent change, never write junk.

Stable API (used by `config`, `providers add|remove|…`, `keys` and `config import-legacy`):

    edit_config(mutate, path=None) -> Path
        Lock the file (fcntl on a sibling `.config.toml.lock`), read it (or start from an empty document),
        call `mutate(doc)` on the tomlkit document, validate the result with `exobridge.core.config.build`
        (raise ConfigError and write nothing if it is invalid), then write it atomically
        (`files.write_atomic`: temp file + rename in the same directory) keeping the existing mode
        (new files 0600). Comments, ordering and tables the user wrote survive. Returns the path.

    read_document(path)          the tomlkit document of `path` (empty when missing); ConfigError on bad TOML
    validate_text(text, path)    the Config built from `text` alone (environment ignored), or ConfigError
    replace_config(text, path, previous=…)  validate `text`, then write it under the lock (`config edit`);
                                 with `previous`, only if the file still holds it (else ChangedMeanwhile)

Also here, for the `config` and `providers` commands (all raise EditError, a one-line usage error, exit 2):
    split_key / resolve_key / format_key   dotted keys (`models."llama-3.2-3b".openrouter`) ↔ file paths
    coerce(key, raw)                       a command-line string typed and checked for its key
    set_in_document / remove_from_document / document_value / document_config
    settings(config), effective_value(key, config)   effective values with their sources
    add_provider / remove_provider / set_enabled / move_provider / planned_provider / probe_models
    STARTER, write_starter(path, force)

tomlkit is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exobridge.core import files, paths
from exobridge.core.config import (
    DEFAULTS,
    KINDS,
    PROVIDER_KEYS,
    Config,
    ConfigError,
    ProviderConfig,
    build,
    decode,
    header_problem,
    is_http_url,
    read_bytes,
)

if TYPE_CHECKING:
    import tomlkit


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a file-system failure while locking or writing `path` into a one-line ConfigError."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(str(path), "", files.write_problem(exc, path)) from None


def _decode(path: Path) -> str | None:
    raw = read_bytes(path)
    return None if raw is None else decode(raw, path)


def parse_document(text: str, source: str) -> tomlkit.TOMLDocument:
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        return _raise_parse(text, source, exc)


def _raise_parse(text: str, source: str, exc: Exception) -> Any:
    # Prefer tomllib's wording ("Invalid value (at line 3, column 9)"), the same as `load` gives.
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as decode_error:
        message = str(decode_error)
        if "(at line" in message:
            problem, _, position = message.rpartition(" (at ")
            raise ConfigError(source, position.rstrip(")"), problem) from None
        raise ConfigError(source, "", message) from None
    raise ConfigError(source, "", str(exc)) from None


def read_document(path: Path) -> tomlkit.TOMLDocument:
    """The file as an editable tomlkit document; an empty document when it does not exist."""
    import tomlkit

    text = _decode(path)
    if text is None:
        return tomlkit.document()
    return parse_document(text, str(path))


def validate_text(text: str, path: Path) -> Config:
    """The Config `text` would give on its own (the environment is ignored), or ConfigError."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        _raise_parse(text, str(path), ValueError("invalid TOML"))
        raise  # unreachable: _raise_parse always raises
    return build(raw, path, env={})


def edit_config(mutate: Callable[[tomlkit.TOMLDocument], None], path: Path | None = None) -> Path:
    """Lock, read, `mutate(doc)`, validate, write atomically keeping the mode. See the module docstring."""
    import tomlkit

    path = paths.config_path() if path is None else path
    with writing(path), files.locked(path):
        doc = read_document(path)
        before = doc.as_string()
        mutate(doc)
        text = tomlkit.dumps(doc)
        if text and not text.endswith("\n") and (not before.strip() or before.endswith("\n")):
            text += "\n"  # a file we start, or one that ended with a newline, ends with one
        validate_text(text, path)
        if tomllib.loads(text) != doc.unwrap():
            # tomlkit can misplace a new key in unusual layouts (dotted keys after tables): never write that.
            raise ConfigError(str(path), "", "cannot change this file's layout safely; use `exobridge config edit`")
        files.write_atomic(path, text)
    return path


class ChangedMeanwhile(Exception):
    """The file changed between reading it and replacing it (another command wrote it meanwhile)."""


def file_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def replace_config(text: str, path: Path | None = None, *, previous: bytes | bool | None = True) -> Path:
    """Write `text` as the whole config file, under the lock, only if it is a valid config.

    `previous` (bytes, or None for "no file") makes the write conditional: ChangedMeanwhile is raised when
    the file no longer holds it. The default (True) replaces whatever is there.
    """
    path = paths.config_path() if path is None else path
    validate_text(text, path)
    with writing(path), files.locked(path):
        if previous is not True and file_bytes(path) != previous:
            raise ChangedMeanwhile(str(path))
        files.write_atomic(path, text)
    return path


# --- dotted keys ------------------------------------------------------------------------------------------------

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
PROVIDER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# What each provider key holds, so `config set` can type and check a value before writing it.
PROVIDER_KEY_TYPES: dict[str, str] = {
    "kind": "kind",
    "url": "url",
    "urls": "urls",
    "priority": "int",
    "enabled": "bool",
    "key_env": "env",
    "connect_timeout": "seconds",
    "first_token_timeout": "seconds",
    "idle_timeout": "seconds",
    "headers": "headers",
    "cooldown": "seconds_or_zero",
}
assert set(PROVIDER_KEY_TYPES) == PROVIDER_KEYS


class EditError(ValueError):
    """A bad key, name or value given on the command line (exit 2). `str()` is one line."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        self.suggestions = suggestions or []
        if self.suggestions:
            message = f"{message} (did you mean {', '.join(self.suggestions)}?)"
        super().__init__(message)


@dataclass(frozen=True)
class KeyPath:
    """A dotted key resolved against the config: its parts in the file and the kind of value it holds."""

    parts: tuple[str, ...]
    type: str  # str, kind, url, urls, int, bool, env, seconds, headers, header, table, any

    @property
    def dotted(self) -> str:
        return format_key(self.parts)


def format_key(parts: tuple[str, ...] | list[str]) -> str:
    """`("models", "llama-3.2-3b", "exo")` → `models."llama-3.2-3b".exo`; bare parts stay bare."""
    return ".".join(p if BARE_KEY.match(p) and "." not in p else json.dumps(p, ensure_ascii=False) for p in parts)


def split_key(dotted: str) -> list[str]:
    """Split on dots outside quotes: `models."llama-3.2-3b".openrouter` → 3 parts."""
    parts: list[str] = []
    current = ""
    quote: str | None = None
    quoted = False
    for char in dotted.strip():
        if quote:
            if char == quote:
                quote = None
            else:
                current += char
        elif char in "\"'":
            quote, quoted = char, True
        elif char == ".":
            if not current and not quoted:
                raise EditError(f"bad key {dotted!r}: empty part")
            parts.append(current)
            current, quoted = "", False
        else:
            current += char
    if quote:
        raise EditError(f"bad key {dotted!r}: unclosed quote")
    if not current and not quoted:
        raise EditError(f"bad key {dotted!r}: empty part")
    parts.append(current)
    return parts


def known_keys(config: Config) -> list[str]:
    """Every dotted key that names something in the effective config (for suggestions)."""
    names = ["default_model", "providers", "models"]
    for name in config.providers:
        names.append(f"providers.{name}")
        names.extend(f"providers.{name}.{key}" for key in sorted(PROVIDER_KEYS))
    for model, ids in config.models.items():
        names.append(format_key(("models", model)))
        names.extend(format_key(("models", model, provider)) for provider in ids)
    return names


def _unknown(dotted: str, config: Config, hint: str = "") -> EditError:
    close = difflib.get_close_matches(dotted, known_keys(config), n=3, cutoff=0.6)
    if not close and not hint:
        hint = " (keys are default_model, providers.NAME.FIELD and models.MODEL.PROVIDER; see `exobridge config show`)"
    return EditError(f"unknown key {dotted!r}{hint}", close)


def resolve_key(dotted: str, config: Config, force: bool = False) -> KeyPath:
    """The KeyPath of `dotted`, or EditError naming the nearest valid keys. `force` accepts any key."""
    parts = split_key(dotted)
    head = parts[0]
    if head == "models" and len(parts) > 2 and '"' not in dotted and "'" not in dotted:
        # `models.llama-3.1-8b.openrouter`: a model name may hold dots; a last part naming a provider is one.
        if parts[-1] in config.providers:
            parts = ["models", ".".join(parts[1:-1]), parts[-1]]
        else:
            parts = ["models", ".".join(parts[1:])]
    key: KeyPath | None = None
    if parts == ["default_model"]:
        key = KeyPath(("default_model",), "str")
    elif head in ("providers", "models") and len(parts) == 1:
        key = KeyPath((head,), "table")
    elif head == "providers":
        name = parts[1]
        known = name in config.providers
        if len(parts) == 2 and known:
            key = KeyPath(tuple(parts), "table")
        elif len(parts) == 3 and known and parts[2] in PROVIDER_KEY_TYPES:
            key = KeyPath(tuple(parts), PROVIDER_KEY_TYPES[parts[2]])
        elif len(parts) == 4 and known and parts[2] == "headers":
            key = KeyPath(tuple(parts), "header")
        if key is None and not known and not force:
            raise _unknown(dotted, config, f": no provider {name!r} (add one with `exobridge providers add`)")
    elif head == "models":
        if len(parts) == 2:
            key = KeyPath(tuple(parts), "table")
        elif len(parts) == 3 and parts[2] in config.providers:
            key = KeyPath(tuple(parts), "str")
    if key is None:
        if not force:
            raise _unknown(dotted, config)
        key = KeyPath(tuple(parts), "any")
    return key


# --- values ---------------------------------------------------------------------------------------------------

TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


def _url(value: str, where: str) -> str:
    if not is_http_url(value.strip()):
        raise EditError(f"{where}: not an http(s) URL: {value!r}")
    return value.strip().rstrip("/")


def _toml_value(raw: str) -> Any:
    """`raw` read as a TOML value (`["a", "b"]`, `{ a = "b" }`, `3`, `true`), or ValueError."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError(raw) from None


def coerce(key: KeyPath, raw: str) -> Any:
    """The typed value `raw` stands for at `key`, or EditError (one line)."""
    where = key.dotted
    kind = key.type
    text = raw.strip()
    if kind == "table":
        raise EditError(f"{where} is a table: set one of its keys, e.g. {where}.<key>")
    if kind in ("str", "env", "kind", "header"):
        if not text:
            raise EditError(f"{where}: expected a non-empty value")
        if kind == "header" and (problem := header_problem(key.parts[-1], text)):
            raise EditError(f"{where}: {problem}")
        if kind == "env" and not ENV_NAME.match(text):
            raise EditError(f"{where}: not an environment variable name: {raw!r}")
        if kind == "kind" and text not in KINDS:
            raise EditError(f"{where}: unknown kind {raw!r} (one of {', '.join(KINDS)})")
        return text
    if kind == "url":
        return _url(text, where)
    if kind == "urls":
        if text.startswith("["):
            try:
                items = _toml_value(text)
            except ValueError:
                raise EditError(f'{where}: expected a list like \'["http://a:52415", "http://b:52415"]\'') from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise EditError(f"{where}: expected a list of URL strings")
        else:
            items = [part for part in text.split(",") if part.strip()]
        if not items:
            raise EditError(f"{where}: expected at least one URL")
        return [_url(item, where) for item in items]
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise EditError(f"{where}: expected an integer, got {raw!r}") from None
    if kind == "bool":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise EditError(f"{where}: expected true or false, got {raw!r}")
    if kind in ("seconds", "seconds_or_zero"):
        try:
            number = float(text)
        except ValueError:
            raise EditError(f"{where}: expected a number of seconds, got {raw!r}") from None
        if kind == "seconds_or_zero" and number == 0:
            return 0
        if not number > 0 or number == float("inf"):
            raise EditError(f"{where}: expected a positive number of seconds, got {raw!r}")
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "headers":
        try:
            table = _toml_value(text)
        except ValueError:
            table = None
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise EditError(f'{where}: expected a table like \'{{ "X-Title" = "me" }}\'')
        for name, header_value in table.items():
            problem = header_problem(name, header_value)
            if problem:
                raise EditError(f"{where}: {problem}")
        return table
    try:  # "any" (--force): a TOML value when it reads as one, else the text itself
        return _toml_value(text)
    except ValueError:
        return raw


# --- the document ---------------------------------------------------------------------------------------------


def _is_table(item: Any) -> bool:
    return isinstance(item, dict)


def _child_table(container: Any, name: str, depth: int) -> Any:
    """`container[name]`, created when missing: a super-table at the top (`[providers.x]` headers only)."""
    import tomlkit

    if name in container:
        item = container[name]
        if not _is_table(item):
            raise EditError(f"{name!r} in the file is a value, not a table; fix it with `exobridge config edit`")
        return item
    if depth == 0:
        table = tomlkit.table(is_super_table=True)
    elif depth == 1:
        table = tomlkit.table()
    else:
        table = tomlkit.inline_table()
    container[name] = table
    return container[name]


def set_in_document(doc: tomlkit.TOMLDocument, parts: tuple[str, ...], value: Any) -> None:
    """Set `parts` = `value`, creating the tables on the way. `url` and `urls` replace each other."""
    import tomlkit

    container: Any = doc
    created: Any = None
    for depth, name in enumerate(parts[:-1]):
        existed = name in container
        container = _child_table(container, name, depth)
        if depth == 1 and not existed:
            created = container
    last = parts[-1]
    if len(parts) == 3 and parts[0] == "providers" and last in ("url", "urls"):
        other = "urls" if last == "url" else "url"
        if other in container:
            try:  # in place, keeping its position and trailing comment
                container.value._replace(other, last, value)
                return
            except Exception:
                del container[other]
    container[last] = value
    if created is not None:  # a blank line before whatever table follows
        created.add(tomlkit.nl())


def _empty(table: Any) -> bool:
    from tomlkit.items import Null, Whitespace

    if len(table) != 0:
        return False
    body = getattr(getattr(table, "value", None), "body", [])
    return all(isinstance(item, Whitespace | Null) for _, item in body)


def remove_from_document(doc: tomlkit.TOMLDocument, parts: tuple[str, ...]) -> bool:
    """Delete `parts` from the file; prune the tables it leaves empty (not ones holding comments)."""
    chain: list[Any] = [doc]
    for name in parts[:-1]:
        item = chain[-1].get(name)
        if not _is_table(item):
            return False
        chain.append(item)
    if parts[-1] not in chain[-1]:
        return False
    del chain[-1][parts[-1]]
    for depth in range(len(chain) - 1, 0, -1):
        if _empty(chain[depth]):
            del chain[depth - 1][parts[depth - 1]]
        else:
            break
    return True


def document_value(doc: tomlkit.TOMLDocument, parts: tuple[str, ...]) -> tuple[bool, Any]:
    """(found, plain value) of `parts` in the file."""
    item: Any = doc
    for name in parts:
        if not _is_table(item) or name not in item:
            return False, None
        item = item[name]
    return True, item.unwrap() if hasattr(item, "unwrap") else item


def document_config(doc: tomlkit.TOMLDocument, path: Path) -> Config:
    """The Config the document gives on its own (environment ignored)."""
    return build(doc.unwrap(), path, env={})


# --- the effective config, key by key ---------------------------------------------------------------------------


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
    from exobridge.core.model_map import table as model_table

    parts = key.parts
    if parts == ("default_model",):
        return config.default_model, config.sources.get("default_model", "default")
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


# --- providers ----------------------------------------------------------------------------------------------------


def unknown_provider(name: str, config: Config) -> EditError:
    return EditError(config.unknown_provider(name))


def add_provider(
    doc: tomlkit.TOMLDocument,
    config: Config,
    name: str,
    kind: str,
    urls: list[str],
    key_env: str | None = None,
    priority: int | None = None,
) -> int:
    """Add `[providers.NAME]`; refuses bad names, kinds, urls and duplicates. Returns its priority."""
    import tomlkit

    if not PROVIDER_NAME.match(name):
        raise EditError(f"bad provider name {name!r}: use letters, digits, '_' and '-'")
    if name in config.providers:
        state = "" if config.providers[name].enabled else f" (disabled: `exobridge providers enable {name}`)"
        raise EditError(f"provider {name!r} already exists{state}")
    if kind not in KINDS:
        raise EditError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if not urls:
        raise EditError("--url is required")
    checked = [_url(u, "--url") for u in urls]
    if key_env is not None and not ENV_NAME.match(key_env):
        raise EditError(f"--key-env: not an environment variable name: {key_env!r}")
    if priority is None:
        priority = max((p.priority for p in config.providers.values()), default=-1) + 1
    table = tomlkit.table()
    table["kind"] = kind
    if len(checked) == 1:
        table["url"] = checked[0]
    else:
        table["urls"] = checked
    if key_env:
        table["key_env"] = key_env
    table["priority"] = priority
    table.add(tomlkit.nl())
    _child_table(doc, "providers", 0)[name] = table
    return priority


def planned_provider(
    name: str,
    kind: str,
    urls: list[str],
    key_env: str | None = None,
    priority: int | None = None,
    path: Path | None = None,
) -> ProviderConfig:
    """The provider `add_provider` would add to the file, checked but not written (for `add --check`)."""
    path = paths.config_path() if path is None else path
    doc = read_document(path)
    add_provider(doc, document_config(doc, path), name, kind, urls, key_env, priority)
    return document_config(doc, path).providers[name]


def is_builtin_provider(name: str) -> bool:
    return name in DEFAULTS["providers"]


def remove_provider(doc: tomlkit.TOMLDocument, config: Config, name: str) -> bool:
    """Delete a provider the user added. A built-in one is disabled instead; returns False then."""
    if name not in config.providers:
        raise unknown_provider(name, config)
    if is_builtin_provider(name):
        set_in_document(doc, ("providers", name, "enabled"), False)
        return False
    remove_from_document(doc, ("providers", name))
    return True


def set_enabled(doc: tomlkit.TOMLDocument, config: Config, name: str, enabled: bool) -> None:
    if name not in config.providers:
        raise unknown_provider(name, config)
    if enabled:
        found, _ = document_value(doc, ("providers", name, "enabled"))
        if found:
            remove_from_document(doc, ("providers", name, "enabled"))
        if not document_config(doc, config.path).providers[name].enabled:  # e.g. enabled set by a dotted key
            set_in_document(doc, ("providers", name, "enabled"), True)
    else:
        set_in_document(doc, ("providers", name, "enabled"), False)


def move_provider(doc: tomlkit.TOMLDocument, config: Config, name: str, position: int) -> list[str]:
    """Put `name` at `position` (0 = first) and write explicit priorities 0, 1, 2… for all providers,
    the others keeping their relative order. Returns the new order."""
    if name not in config.providers:
        raise unknown_provider(name, config)
    if position < 0:
        raise EditError(f"--priority must be 0 or more, got {position}")
    order = [p.name for p in config.ordered(include_disabled=True) if p.name != name]
    order.insert(min(position, len(order)), name)
    for index, provider in enumerate(order):
        set_in_document(doc, ("providers", provider, "priority"), index)
    return order


@dataclass(frozen=True)
class Probe:
    ok: bool
    url: str
    detail: str  # "12 models" or the failure reason
    models: list[str] | None = None


def probe_models(provider: ProviderConfig, key: str | None) -> Probe:
    """One GET of the provider's model list (no completion): does the endpoint answer like an OpenAI API?"""
    import httpx

    from exobridge.core.failover import Failure
    from exobridge.core.providers import client_for
    from exobridge.core.providers.exo import listed_ids

    with httpx.Client(trust_env=False) as http:
        client = client_for(provider, key, http)
        url = client.models_url(provider.url)
        timeout = httpx.Timeout(connect=provider.connect_timeout, read=10.0, write=10.0, pool=provider.connect_timeout)
        try:
            response = client.open("GET", url, timeout=timeout)
            client.raise_for_status(response)
            try:
                response.read()
                ids = listed_ids(response.json())
            except (ValueError, httpx.HTTPError):
                return Probe(False, url, "answered, but not with an OpenAI-style model list")
            finally:
                response.close()
        except Failure as failure:
            from exobridge.core.keys import redact

            status = f"HTTP {failure.status}: " if failure.status and str(failure.status) not in failure.reason else ""
            return Probe(False, url, redact(f"{status}{failure.reason}", key))
    if ids is None:
        return Probe(True, url, "answered with an empty model list", [])
    return Probe(True, url, f"{len(ids)} model{'s' if len(ids) != 1 else ''}", ids)


# --- the starter file -------------------------------------------------------------------------------------------

STARTER = """\
# exobridge configuration. Everything here repeats the built-in defaults: delete what you don't change.
# Change it safely with `exobridge config set KEY VALUE` or `exobridge config edit` (both check it first).
# `exobridge config show` prints the effective settings and where each one comes from.

# The model `exobridge chat` asks for when you give no --model.
default_model = "llama-3.2-3b"

# Providers are tried by priority, lowest first; when one cannot answer, the next one does.

[providers.exo]
kind = "exo"
url = "http://localhost:52415"
# Several Exo nodes? List them instead of `url` (the first that answers is used):
# urls = ["http://192.168.1.10:52415", "http://192.168.1.11:52415"]
# EXOBRIDGE_EXO_URL in the environment overrides both.
priority = 0
# connect_timeout = 1.0      # seconds: a dead local Exo must cost almost nothing

[providers.openrouter]
kind = "openrouter"
url = "https://openrouter.ai/api/v1"
# The key is read from this environment variable, else from `exobridge keys set openrouter`.
key_env = "OPENROUTER_API_KEY"
priority = 1

[providers.huggingface]
kind = "huggingface"
url = "https://router.huggingface.co/v1"
# HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), else `exobridge keys set huggingface`.
key_env = "HF_TOKEN"
priority = 2
# enabled = false            # turn a provider off without deleting it

# Any OpenAI-compatible endpoint can be a provider (Ollama, llama.cpp, vLLM, LM Studio, Together, Groq…):
# [providers.ollama]
# kind = "openai"
# url = "http://localhost:11434/v1"
# priority = 3
# key_env = "OLLAMA_API_KEY"  # only for endpoints that need a key

# Which id each provider uses for a model name (the built-in table already covers common models):
# [models."llama-3.2-3b"]
# exo = "llama-3.2-3b"
# openrouter = "meta-llama/llama-3.2-3b-instruct"
# huggingface = "meta-llama/Llama-3.2-3B-Instruct"
# ollama = "llama3.2:3b"
"""


def write_starter(path: Path | None = None, force: bool = False) -> Path:
    """Write STARTER to the config path; EditError when a file is there and `force` is not set."""
    path = paths.config_path() if path is None else path
    validate_text(STARTER, path)
    with writing(path), files.locked(path):
        if path.exists() and not force:
            raise EditError(f"{path} already exists (use --force to replace it)")
        files.write_atomic(path, STARTER)
    return path
