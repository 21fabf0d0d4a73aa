"""The Hugging Face router: OpenAI-compatible; names the backend that served in `x-inference-provider`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exobridge.core.providers.base import ProviderKind, Timeouts

if TYPE_CHECKING:
    import httpx

LEGACY_TOKEN_ENV = "HUGGING_FACE_HUB_TOKEN"


class HuggingFace(ProviderKind):
    name = "huggingface"
    label = "Hugging Face"
    default_url = "https://router.huggingface.co/v1"
    default_timeouts = Timeouts(5.0, 60.0, 60.0)
    default_key_env = "HF_TOKEN"
    needs_key = True

    @classmethod
    def key_envs_for(cls, key_env: str | None) -> list[str]:
        names = super().key_envs_for(key_env)
        if key_env == cls.default_key_env:
            names.append(LEGACY_TOKEN_ENV)  # the name older huggingface_hub releases read
        return names

    def backend(self, response: httpx.Response) -> str | None:
        return response.headers.get("x-inference-provider") or None
