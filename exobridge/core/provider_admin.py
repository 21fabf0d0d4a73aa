"""Provider administration in the config document: add, remove (or disable a built-in), enable, move.

Each function changes a tomlkit document inside `config_file.edit_config` and raises EditError (exit 2) for
a bad name, kind, URL or an unknown provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from exobridge.core import paths
from exobridge.core.config import DEFAULTS, Config, ProviderConfig
from exobridge.core.config_document import (
    _child_table,
    document_config,
    document_value,
    remove_from_document,
    set_in_document,
)
from exobridge.core.config_file import read_document
from exobridge.core.config_keys import EditError
from exobridge.core.config_schema import ENV_NAME, PROVIDER_FIELDS, PROVIDER_NAME, FieldProblem, check, kind_names

if TYPE_CHECKING:
    import tomlkit


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
    if kind not in kind_names():
        raise EditError(f"unknown kind {kind!r} (one of {', '.join(kind_names())})")
    if not urls:
        raise EditError("--url is required")
    try:
        checked = check(PROVIDER_FIELDS["urls"], list(urls))
    except FieldProblem as problem:
        raise EditError(f"--url: {problem}") from None
    if key_env is not None and not ENV_NAME.match(key_env):
        raise EditError(f"--key-env: not an environment variable name: {key_env!r}")
    if priority is None:
        priority = max((p.priority for p in config.providers.values()), default=-1) + 1
    try:
        priority = check(PROVIDER_FIELDS["priority"], priority)
    except FieldProblem as problem:
        raise EditError(f"--priority: {problem}") from None
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
