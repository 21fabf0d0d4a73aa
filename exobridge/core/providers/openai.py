"""Any OpenAI-compatible chat endpoint (llama.cpp, vLLM, Together, Groq …): the base behaviour as it is."""

from __future__ import annotations

from exobridge.core.providers.base import ProviderKind


class OpenAICompatible(ProviderKind):
    name = "openai"
    label = "OpenAI-compatible"
