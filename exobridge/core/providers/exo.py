"""Exo, both API lines. Legacy (`/healthcheck`) answers unknown names with its default model, so the
model is checked twice: against the node's `/v1/models` list before sending, and against the served
`model` field before printing. v1 (`/node_id`) answers 404 "No instance found" when nothing is placed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exobridge.core.cache import JsonCache
from exobridge.core.failover import Failure, FailureKind
from exobridge.core.providers.openai import OpenAICompatible

if TYPE_CHECKING:
    from exobridge.core.model_map import Target

MODEL_LIST_TTL = 300.0
MODEL_LIST_READ_TIMEOUT = 5.0


def same_model(requested: str, served: str) -> bool:
    a, b = requested.lower(), served.lower()
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def listed_ids(data: Any) -> list[str] | None:
    """Model ids from an OpenAI-style `{"data": [{"id": …}]}` list; None when the shape is unknown."""
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return None
    ids = [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
    return ids or None


class Exo(OpenAICompatible):
    kind = "exo"
    sends_stream_usage = False

    def chat_url(self, node: str) -> str:
        return f"{node}/v1/chat/completions"

    def models_url(self, node: str) -> str:
        return f"{node}/v1/models"

    def cost(self, usage: dict[str, Any] | None) -> float | None:
        return 0.0

    def listed_models(self, node: str) -> list[str] | None:
        """The node's model list, cached for a few minutes. Raises a CONNECT Failure for a dead node."""
        import httpx

        cache = JsonCache("exo-models")
        cached = cache.get(node, MODEL_LIST_TTL)
        if isinstance(cached, list):
            return [str(i) for i in cached]
        # A black-holed node must cost no more than the first-token timeout the user configured.
        read = min(MODEL_LIST_READ_TIMEOUT, self.config.first_token_timeout)
        timeout = httpx.Timeout(
            connect=self.config.connect_timeout,
            read=read,
            write=read,
            pool=self.config.connect_timeout,
        )
        response = self.open("GET", self.models_url(node), timeout=timeout)
        try:
            if response.status_code != 200:
                return None
            response.read()
            ids = listed_ids(response.json())
        except (ValueError, httpx.HTTPError):
            return None
        finally:
            response.close()
        if ids is not None:
            cache.put(node, ids)
        return ids

    def choose_model(self, node: str, target: Target) -> str:
        assert target.model is not None
        ids = self.listed_models(node)
        if ids is None:
            return target.model
        by_lower = {i.lower(): i for i in ids}
        for candidate in (target.model, *target.alternates):
            if candidate.lower() in by_lower:
                return by_lower[candidate.lower()]
        raise Failure(
            FailureKind.MODEL_UNAVAILABLE,
            f"model {target.model} is not in this node's model list (exobridge models --provider exo)",
        )

    def check_served(self, requested: str, served: str) -> None:
        if not same_model(requested, served):
            raise Failure(
                FailureKind.MODEL_UNAVAILABLE,
                f"answered with {served} instead of {requested}: model not available there",
            )
