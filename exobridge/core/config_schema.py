"""The one schema of the config file: every field, its type, its allowed range, and what it means.

The file reader (`config.build`) and `config set` (`parse_text`, from a command-line string) check a value
with the same `check` against the same `Field`, so the file can hold nothing `config set` would refuse and
the other way round. Problems are `FieldProblem` (a ValueError whose `str()` is one line without the key);
the caller adds where it was (`providers.exo.connect_timeout: …`).

Ranges (documented in docs/config.md):
    connect_timeout        0 < seconds ≤ 300
    first_token_timeout    0 < seconds ≤ 3600
    idle_timeout           0 < seconds ≤ 3600
    cooldown               0 ≤ seconds ≤ 3600   (0: never cool down; the cap is failover.RETRY_AFTER_CAP)
    priority               integer, -1 000 000 … 1 000 000
    key_env                an environment variable name: [A-Za-z_][A-Za-z0-9_]*
    url / urls             http(s) URLs with a host and a valid port
    headers                ASCII names and one-line ASCII values
    load                   ask | auto | never (Exo: what chat does with a model that is not loaded)
    load_never             a list of model names (Exo, load = ask: never offer to load these)
    model                  a non-empty model id: sent when the requested logical name has no id for this provider
    markdown (top level)   true | false: the interactive session renders finished replies as Markdown
Numbers are finite: NaN and infinities are refused everywhere.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROVIDER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_CONNECT_TIMEOUT = 300.0
MAX_TIMEOUT = 3600.0
MAX_COOLDOWN = 3600.0  # equal to failover.RETRY_AFTER_CAP (a test keeps them equal)
PRIORITY_RANGE = (-1_000_000, 1_000_000)
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


class FieldType(StrEnum):
    STR = "str"
    KIND = "kind"
    URL = "url"
    URLS = "urls"
    INT = "int"
    BOOL = "bool"
    ENV = "env"
    SECONDS = "seconds"  # > 0
    SECONDS_OR_ZERO = "seconds_or_zero"  # ≥ 0
    HEADERS = "headers"
    HEADER = "header"  # one header's value
    TABLE = "table"
    CHOICE = "choice"  # one of Field.choices
    NAMES = "names"  # a list of non-empty strings
    ANY = "any"  # --force: anything TOML can hold


class FieldProblem(ValueError):
    """A value that does not fit its field. `str()` is one line, without the key."""


@dataclass(frozen=True)
class Field:
    """One config key's type and limits: what `check()` holds a value to."""

    type: FieldType
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


PROVIDER_FIELDS: dict[str, Field] = {
    "kind": Field(FieldType.KIND, "the provider kind (exo, openrouter, huggingface, openai, or a plug-in)"),
    "url": Field(FieldType.URL, "the base URL"),
    "urls": Field(FieldType.URLS, "several base URLs, tried in order (instead of url)"),
    "priority": Field(FieldType.INT, "lower is tried first", *PRIORITY_RANGE),
    "enabled": Field(FieldType.BOOL, "false turns the provider off"),
    "key_env": Field(FieldType.ENV, "the environment variable holding the key"),
    "connect_timeout": Field(FieldType.SECONDS, "seconds to connect", 0, MAX_CONNECT_TIMEOUT),
    "first_token_timeout": Field(FieldType.SECONDS, "seconds until the first token", 0, MAX_TIMEOUT),
    "idle_timeout": Field(FieldType.SECONDS, "seconds of silence allowed between tokens", 0, MAX_TIMEOUT),
    "headers": Field(FieldType.HEADERS, "extra HTTP headers sent with every request"),
    "cooldown": Field(FieldType.SECONDS_OR_ZERO, "seconds to skip a failed node (0: never)", 0, MAX_COOLDOWN),
    "load": Field(
        FieldType.CHOICE,
        "Exo: a model that is not loaded: ask (on a terminal), auto (load it, then answer), never (fail over)",
        choices=("ask", "auto", "never"),
    ),
    "load_never": Field(FieldType.NAMES, "Exo, load = ask: models chat never offers to load (its [n] answer)"),
    "model": Field(
        FieldType.STR,
        "the model id sent when the requested model has no id for this provider (e.g. llama3.2:3b)",
    ),
}
PROVIDER_KEYS = frozenset(PROVIDER_FIELDS)
# Top-level settings that are one value each, checked here like provider fields (`config set markdown true`).
TOP_LEVEL_FIELDS: dict[str, Field] = {
    "log": Field(FieldType.BOOL, "keep each request in the history database (false: nothing is recorded)"),
    "markdown": Field(FieldType.BOOL, "the interactive chat session shows each finished reply rendered as Markdown"),
}
TOP_LEVEL_KEYS = frozenset({"default_model", "providers", "models", "log", "budget", *TOP_LEVEL_FIELDS})
# log, budget, markdown: docs/history.md and docs/config.md


def kind_names() -> tuple[str, ...]:
    from exobridge.core import providers

    return tuple(providers.kind_names())


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


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldProblem(f"expected a URL string, got {type(value).__name__} {_shown(value)}")
    if not is_http_url(value.strip()):
        raise FieldProblem(f"not an http(s) URL: {_shown(value)}")
    return value.strip().rstrip("/")


def _seconds(field: Field, value: Any) -> float | int:
    zero_ok = field.type is FieldType.SECONDS_OR_ZERO
    high = field.high if field.high is not None else MAX_TIMEOUT
    what = f"a number of seconds from 0 to {high:g}" if zero_ok else f"a positive number of seconds (at most {high:g})"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldProblem(f"expected {what}, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldProblem(f"expected {what}, got {_shown(value)}")
    if value < 0 or (value == 0 and not zero_ok) or value > high:
        raise FieldProblem(f"expected {what}, got {_shown(value)}")
    return value


def check(field: Field, value: Any, name: str = "") -> Any:
    """`value` (as TOML gives it) checked against `field`; returns it normalised (URLs without a trailing /).

    `name` is the field's own key, used by HEADER (the header's name).
    """
    kind = field.type
    if kind is FieldType.KIND:
        if not isinstance(value, str) or value not in kind_names():
            raise FieldProblem(f"unknown kind {_shown(value)} (one of {', '.join(kind_names())})")
        return value
    if kind is FieldType.URL:
        return _url(value)
    if kind is FieldType.URLS:
        if not isinstance(value, list) or not value:
            raise FieldProblem("expected a non-empty list of URLs")
        return [_url(item) for item in value]
    if kind is FieldType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldProblem(f"expected an integer, got {_shown(value)}")
        low, high = int(field.low or 0), int(field.high or 0)
        if not low <= value <= high:
            raise FieldProblem(f"expected an integer from {low} to {high}, got {_shown(value)}")
        return value
    if kind is FieldType.BOOL:
        if not isinstance(value, bool):
            raise FieldProblem(f"expected true or false, got {_shown(value)}")
        return value
    if kind is FieldType.ENV:
        if not isinstance(value, str) or not ENV_NAME.match(value):
            raise FieldProblem(f"not an environment variable name (A-Z, 0-9, _; not a digit first): {_shown(value)}")
        return value
    if kind in (FieldType.SECONDS, FieldType.SECONDS_OR_ZERO):
        return _seconds(field, value)
    if kind is FieldType.HEADERS:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise FieldProblem("expected a table of string values")
        for header, header_value in value.items():
            if problem := header_problem(header, header_value):
                raise FieldProblem(problem)
        return dict(value)
    if kind is FieldType.HEADER:
        if not isinstance(value, str) or not value.strip():
            raise FieldProblem("expected a non-empty value")
        if problem := header_problem(name, value):
            raise FieldProblem(problem)
        return value
    if kind is FieldType.STR:
        if not isinstance(value, str) or not value.strip():
            raise FieldProblem(f"expected a non-empty string, got {_shown(value)}")
        return value
    if kind is FieldType.TABLE:
        raise FieldProblem("is a table: set one of its keys")
    if kind is FieldType.NAMES:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise FieldProblem(f"expected a list of names, got {_shown(value)}")
        return list(value)
    if kind is FieldType.CHOICE:
        if not isinstance(value, str) or value not in field.choices:
            raise FieldProblem(f"expected one of {', '.join(field.choices)}, got {_shown(value)}")
        return value
    return value


def _toml_value(raw: str) -> Any:
    """`raw` read as a TOML value (`["a", "b"]`, `{ a = "b" }`, `3`, `true`), or ValueError."""
    import tomllib

    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError(raw) from None


def parse_text(field: Field, raw: str, name: str = "") -> Any:
    """The typed value a command-line string stands for (`config set`), checked with `check`.

    FieldProblem when it cannot be read or does not fit; the value written is exactly what the file reader
    would accept.
    """
    text = raw.strip()
    kind = field.type
    if kind in (FieldType.STR, FieldType.KIND, FieldType.ENV, FieldType.HEADER, FieldType.CHOICE):
        if not text:
            raise FieldProblem("expected a non-empty value")
        return check(field, text, name)
    if kind is FieldType.URL:
        return check(field, text)
    if kind is FieldType.NAMES:
        if text.startswith("["):
            try:
                names = _toml_value(text)
            except ValueError:
                raise FieldProblem('expected a list like \'["llama-3.2-3b", "qwen-2.5-7b"]\'') from None
        else:
            names = [part.strip() for part in text.split(",") if part.strip()]
        return check(field, names)
    if kind is FieldType.URLS:
        if text.startswith("["):
            try:
                items = _toml_value(text)
            except ValueError:
                raise FieldProblem('expected a list like \'["http://a:52415", "http://b:52415"]\'') from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise FieldProblem("expected a list of URL strings")
        else:
            items = [part for part in text.split(",") if part.strip()]
        if not items:
            raise FieldProblem("expected at least one URL")
        return check(field, items)
    if kind is FieldType.INT:
        try:
            number = int(text)
        except ValueError:
            raise FieldProblem(f"expected an integer, got {_shown(raw)}") from None
        return check(field, number)
    if kind is FieldType.BOOL:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise FieldProblem(f"expected true or false, got {_shown(raw)}")
    if kind in (FieldType.SECONDS, FieldType.SECONDS_OR_ZERO):
        try:
            number = float(text)
        except ValueError:
            raise FieldProblem(f"expected a number of seconds, got {_shown(raw)}") from None
        check(field, number)
        # Whole numbers written as integers (`30`, not `30.0`), as the user typed them.
        return int(number) if number.is_integer() and "." not in text else number
    if kind is FieldType.HEADERS:
        try:
            table = _toml_value(text)
        except ValueError:
            table = None
        if not isinstance(table, dict):
            raise FieldProblem('expected a table like \'{ "X-Title" = "me" }\'')
        return check(field, table)
    if kind is FieldType.TABLE:
        return check(field, text)
    try:  # ANY (--force): a TOML value when it reads as one, else the text itself
        return _toml_value(text)
    except ValueError:
        return raw
