"""OpenRouter: attribution headers, the cost it reports in `usage.cost`, and its `GET /key` status probe."""

from __future__ import annotations

from typing import Any

from exobridge.core.providers.base import ProviderKind, StatusProbe, Timeouts

ATTRIBUTION_URL = "https://pypi.org/project/exobridge/"


class OpenRouter(ProviderKind):
    name = "openrouter"
    label = "OpenRouter"
    default_url = "https://openrouter.ai/api/v1"
    default_timeouts = Timeouts(5.0, 60.0, 60.0)
    default_key_env = "OPENROUTER_API_KEY"
    needs_key = True
    status_probe = StatusProbe.KEY_INFO

    def headers(self) -> dict[str, str]:
        headers = {
            "HTTP-Referer": ATTRIBUTION_URL,
            "X-OpenRouter-Title": "exobridge",
            "X-Title": "exobridge",
        }
        headers.update(super().headers())
        return headers

    @classmethod
    def cost(cls, usage: dict[str, Any] | None) -> float | None:
        if not usage:
            return None
        value = usage.get("cost")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
