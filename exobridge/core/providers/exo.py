"""Exo, both API lines. Legacy (`/healthcheck`) answers unknown names with its default model, so the
model is checked twice: against the node's `/v1/models` list before sending, and against the served
`model` field before printing. v1 (`/node_id`) answers 404 "No instance found" when nothing is placed.
Every Exo model is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exobridge.core.errors import Failure, FailureKind
from exobridge.core.providers.base import ProviderKind, StatusProbe, Timeouts

if TYPE_CHECKING:
    from exobridge.core.model_targets import Target


def same_model(requested: str, served: str) -> bool:
    a, b = requested.lower(), served.lower()
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


class Exo(ProviderKind):
    name = "exo"
    label = "Exo"
    default_url = "http://localhost:52415"
    # A dead local Exo must cost almost nothing; a model loading on it may take a while to answer.
    default_timeouts = Timeouts(1.0, 60.0, 30.0)
    free = True
    status_probe = StatusProbe.EXO_CLUSTER
    sends_stream_usage = False
    checks_served_model = True
    url_env = "EXOBRIDGE_EXO_URL"
    unreachable_hint = "start Exo (exo) or set EXOBRIDGE_EXO_URL / providers.{name}.url"
    models_path = "/v1/models"
    model_list_seconds = 5.0  # on the LAN and small: a black-holed node costs seconds, not the cloud's 15 s
    chat_path = "/v1/chat/completions"
    loads_models = True  # models load/unload, `load = "ask" | "auto" | "never"` (core/exo_loading.py)

    @classmethod
    def parse_models(cls, data: Any) -> list[dict[str, Any]] | None:
        """The OpenAI-style entries, plus `size_bytes` from a v1 card's `storage_size_megabytes`."""
        models = super().parse_models(data)
        items = data.get("data") if isinstance(data, dict) else None
        if models is None or not isinstance(items, list):
            return models
        sizes = {
            item["id"]: item["storage_size_megabytes"]
            for item in items
            if isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and isinstance(item.get("storage_size_megabytes"), int)
            and not isinstance(item.get("storage_size_megabytes"), bool)
            and item["storage_size_megabytes"] > 0
        }
        for entry in models:
            if entry["id"] in sizes:
                entry["size_bytes"] = sizes[entry["id"]] * 1024 * 1024
        return models

    def listed_models(self, node: str) -> list[str] | None:
        """The ids the node lists (shared model-list cache, refreshed by `models --refresh`); None when the
        node answered without a usable list. Raises a Failure for a node that cannot be asked."""
        from exobridge.core import model_lists

        return model_lists.node_model_ids(self.config, node, self.key, http=self.http)

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
            f"model {target.model} is not in this node's model list (exobridge models --provider {self.config.name})",
        )

    @classmethod
    def cancel_url(cls, node: str, reply_id: str) -> str | None:
        """The current line's `POST /v1/cancel/{command_id}` (its chunks' `id` is the command id); the legacy
        line's ids are `chatcmpl-…` and it has no such route."""
        if reply_id.startswith("chatcmpl-"):
            return None
        from urllib.parse import quote

        return f"{node.rstrip('/')}/v1/cancel/{quote(reply_id, safe='')}"

    def check_served(self, requested: str, served: str) -> None:
        if not same_model(requested, served):
            raise Failure(
                FailureKind.MODEL_UNAVAILABLE,
                f"answered with {served} instead of {requested}: model not available there",
            )
