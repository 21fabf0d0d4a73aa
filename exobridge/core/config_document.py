"""Edits of the config file's tomlkit document that keep what the user wrote (comments, order, layout).

set_in_document(doc, parts, value)      set a dotted key, creating tables on the way (`url` and `urls`
                                        replace each other)
remove_from_document(doc, parts)        delete a key and prune the tables it leaves empty
document_value(doc, parts)              (found, plain value)
document_config(doc, path)              the Config the document gives on its own (environment ignored)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from exobridge.core.config import Config, build
from exobridge.core.config_keys import EditError

if TYPE_CHECKING:
    import tomlkit


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
        if other in container:  # its trailing comment stays with the key that replaces it
            before = container.value.item(other).trivia
            del container[other]
            container[last] = value
            after = container.value.item(last).trivia
            after.comment_ws, after.comment = before.comment_ws, before.comment
            return
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
