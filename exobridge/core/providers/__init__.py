"""Provider kinds. Each module is small; they share the OpenAI-compatible exchange."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exobridge.core.config import ProviderConfig

if TYPE_CHECKING:
    import httpx

    from exobridge.core.providers.openai import OpenAICompatible


def client_for(config: ProviderConfig, key: str | None, http: httpx.Client) -> OpenAICompatible:
    if config.kind == "exo":
        from exobridge.core.providers.exo import Exo

        return Exo(config, key, http)
    if config.kind == "openrouter":
        from exobridge.core.providers.openrouter import OpenRouter

        return OpenRouter(config, key, http)
    if config.kind == "huggingface":
        from exobridge.core.providers.huggingface import HuggingFace

        return HuggingFace(config, key, http)
    from exobridge.core.providers.openai import OpenAICompatible

    return OpenAICompatible(config, key, http)
