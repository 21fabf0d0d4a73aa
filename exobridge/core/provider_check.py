"""`providers add --check`: one GET of a planned provider's model list, before it is saved.

It goes through core/http.py like every other request: the same proxies as `chat` (`trust_env`), no
redirects, a wall-clock deadline no trickle of bytes can extend, a byte cap on the body; the failure text is
redacted (the key and configured header secrets) before it is shown.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from exobridge.core.config import ProviderConfig

CHECK_DEADLINE = 10.0  # seconds for the whole GET (connect, headers, body)


@dataclass(frozen=True)
class Probe:
    ok: bool
    url: str
    detail: str  # "12 models" or the failure reason
    models: list[str] | None = None


def probe_models(provider: ProviderConfig, key: str | None, *, deadline_s: float = CHECK_DEADLINE) -> Probe:
    """One GET of the provider's model list (no completion): does the endpoint answer like an OpenAI API?

    `errors.ProxyError` (exit 4) propagates for a broken proxy setting, as in every command."""
    from exobridge.core import http, providers
    from exobridge.core.errors import Failure
    from exobridge.core.secrets import Redactor, header_secrets

    redactor = Redactor([key, *(s for n, v in provider.headers.items() for s in header_secrets(n, v))])
    kind = providers.kind_class(provider.kind)
    url = kind.models_url(provider.url)
    deadline = time.monotonic() + deadline_s
    with http.client() as client:
        headers = providers.client_for(provider, key, client).headers()
        try:
            timeout = http.timeout_for(provider, read=deadline_s)
            response = http.send(
                client, "GET", url, provider=provider, headers=headers, timeout=timeout, deadline=deadline
            )
            http.raise_for_status(response, provider, deadline=deadline)
            body = http.read_body(response, cap=http.MODEL_LIST_CAP, deadline=deadline, provider=provider)
        except Failure as failure:
            shown = f"HTTP {failure.status}: " if failure.status and str(failure.status) not in failure.reason else ""
            return Probe(False, url, redactor.redact(f"{shown}{failure.reason}"))
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    entries = kind.parse_models(data) if data is not None else None
    if entries is None:
        return Probe(False, url, "answered, but not with an OpenAI-style model list")
    ids = [entry["id"] for entry in entries]
    if not ids:
        return Probe(True, url, "answered with an empty model list", [])
    return Probe(True, url, f"{len(ids)} model{'s' if len(ids) != 1 else ''}", ids)
