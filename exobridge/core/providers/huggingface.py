"""The Hugging Face router: OpenAI-compatible; names the backend that served in `x-inference-provider`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exobridge.core.providers.openai import OpenAICompatible

if TYPE_CHECKING:
    import httpx


class HuggingFace(OpenAICompatible):
    kind = "huggingface"

    def backend(self, response: httpx.Response) -> str | None:
        return response.headers.get("x-inference-provider") or None
