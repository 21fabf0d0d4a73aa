"""Dotted config keys (`models."llama-3.2-3b".openrouter`) and command-line values for them.

    split_key / format_key          a dotted key <-> its parts in the file
    resolve_key(dotted, config)     the KeyPath of a key (its parts and its schema type), or EditError naming
                                    the nearest valid keys
    coerce(key, raw)                a command-line string typed and checked with the ONE schema
                                    (core/config_schema.py), exactly as the file reader checks it

EditError is a UsageError (exit 2): a bad key, name or value given on the command line.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from exobridge.core.config import Config
from exobridge.core.config_schema import (
    PROVIDER_FIELDS,
    PROVIDER_KEYS,
    TOP_LEVEL_FIELDS,
    Field,
    FieldProblem,
    FieldType,
    parse_text,
)
from exobridge.core.errors import UsageError

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class EditError(UsageError, ValueError):
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
    type: FieldType

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
    names = ["default_model", "providers", "models", *TOP_LEVEL_FIELDS]
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
        key = KeyPath(("default_model",), FieldType.STR)
    elif len(parts) == 1 and head in TOP_LEVEL_FIELDS:
        key = KeyPath((head,), TOP_LEVEL_FIELDS[head].type)
    elif head in ("providers", "models") and len(parts) == 1:
        key = KeyPath((head,), FieldType.TABLE)
    elif head == "providers":
        name = parts[1]
        known = name in config.providers
        if len(parts) == 2 and known:
            key = KeyPath(tuple(parts), FieldType.TABLE)
        elif len(parts) == 3 and known and parts[2] in PROVIDER_FIELDS:
            key = KeyPath(tuple(parts), PROVIDER_FIELDS[parts[2]].type)
        elif len(parts) == 4 and known and parts[2] == "headers":
            key = KeyPath(tuple(parts), FieldType.HEADER)
        if key is None and not known and not force:
            raise _unknown(dotted, config, f": no provider {name!r} (add one with `exobridge providers add`)")
    elif head == "models":
        if len(parts) == 2:
            key = KeyPath(tuple(parts), FieldType.TABLE)
        elif len(parts) == 3 and parts[2] in config.providers:
            key = KeyPath(tuple(parts), FieldType.STR)
    if key is None:
        if not force:
            raise _unknown(dotted, config)
        key = KeyPath(tuple(parts), FieldType.ANY)
    return key


def coerce(key: KeyPath, raw: str) -> Any:
    """The typed value `raw` stands for at `key`, or EditError (one line). Checked by the one schema."""
    field = Field(key.type, "")
    if len(key.parts) == 3 and key.parts[0] == "providers" and key.parts[2] in PROVIDER_FIELDS:
        field = PROVIDER_FIELDS[key.parts[2]]
    elif len(key.parts) == 1 and key.parts[0] in TOP_LEVEL_FIELDS:
        field = TOP_LEVEL_FIELDS[key.parts[0]]
    if key.type is FieldType.TABLE:
        raise EditError(f"{key.dotted} is a table: set one of its keys, e.g. {key.dotted}.<key>")
    try:
        return parse_text(field, raw, key.parts[-1])
    except FieldProblem as problem:
        raise EditError(f"{key.dotted}: {problem}") from None
