"""OpenRouter: attribution headers and the cost it reports in `usage.cost`."""

from __future__ import annotations

from typing import Any

from exobridge.core.providers.openai import OpenAICompatible

ATTRIBUTION_URL = "https://pypi.org/project/exobridge/"


class OpenRouter(OpenAICompatible):
    kind = "openrouter"

    def headers(self) -> dict[str, str]:
        headers = {
            "HTTP-Referer": ATTRIBUTION_URL,
            "X-OpenRouter-Title": "exobridge",
            "X-Title": "exobridge",
        }
        headers.update(super().headers())
        return headers

    def cost(self, usage: dict[str, Any] | None) -> float | None:
        if not usage:
            return None
        value = usage.get("cost")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
