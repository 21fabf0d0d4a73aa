"""The dashboard at `GET /`: static files shipped as package data (exobridge/data/dashboard/), no build step.

The page is a window onto the same endpoints any client uses (`/v1/exobridge/status`, `/v1/models`,
`/v1/chat/completions`) plus `/v1/exobridge/dashboard` (what this serve can show). Only the page's own files
are served without the client key: they hold no data, and the page must load to ask for the key.

Every file goes out with a strict Content-Security-Policy (no inline script or style, nothing from another
origin, no framing), `X-Content-Type-Options: nosniff` and no-referrer. The page inserts every provider
string as text (textContent), never as HTML.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# path -> (file in exobridge/data/dashboard, content type)
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/dashboard/app.css": ("app.css", "text/css; charset=utf-8"),
    "/dashboard/icon.svg": ("icon.svg", "image/svg+xml"),
}
PUBLIC_PATHS = frozenset(FILES)  # served without the client key (static, no data)

# What an open dashboard tab reads again and again: not logged when it succeeds (a line every few seconds
# from an idle tab would bury the chat requests in serve's log).
QUIET_READS = frozenset(
    {*FILES, "/v1/exobridge/status", "/v1/exobridge/dashboard", "/v1/exobridge/history", "/v1/exobridge/spend"}
)


def is_quiet_read(scope: MutableMapping[str, Any]) -> bool:
    path = scope.get("path", "")
    return scope.get("method") in ("GET", "HEAD") and (path in QUIET_READS or path.startswith("/v1/exobridge/history/"))


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-cache"),
]

# Sections that need a module of another issue (11: history, spend and budgets; 12: loading a model onto Exo,
# checked in serve/exo_load.py). Without it the page says so, naming the CLI command that has it.
OPTIONAL_MODULES = {
    "history": "exobridge.core.history",
    "spend": "exobridge.core.spend",
    "budgets": "exobridge.core.budget",
}


def _read(name: str) -> bytes:
    return resources.files("exobridge.data").joinpath("dashboard", name).read_bytes()


class DashboardFiles:
    """A raw ASGI endpoint for the page's files (read once, kept in memory: the whole page is a few kB)."""

    def __init__(self) -> None:
        self._cache: dict[str, bytes] = {}

    def body(self, path: str) -> bytes:
        if path not in self._cache:
            self._cache[path] = _read(FILES[path][0])
        return self._cache[path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        body = self.body(path)
        headers = [
            (b"content-type", FILES[path][1].encode()),
            (b"content-length", str(len(body)).encode()),
            *SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


def features() -> dict[str, Any]:
    """What this serve can show besides providers and the playground (`GET /v1/exobridge/dashboard`)."""
    shown = {name: importlib.util.find_spec(module) is not None for name, module in OPTIONAL_MODULES.items()}
    from exobridge.serve import exo_load

    shown["exo_load"] = exo_load.available()
    return {"features": shown}
