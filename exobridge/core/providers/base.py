"""`ProviderKind`: what one kind of provider is (defaults, keys, cost, model list, probes) and how one chat
exchange with it goes. The base class is the OpenAI-compatible behaviour; each kind refines it.

A kind class is a plug-in (see `exobridge.core.providers.register`). Everything that differs between kinds
lives on the class, so code outside this package asks the class instead of comparing kind names:

- class attributes: `name`, `label`, `default_url`, `default_timeouts` (`Timeouts(connect, first_token, idle)`),
  `default_key_env`, `needs_key`, `free`, `status_probe`, `sends_stream_usage`, `checks_served_model`,
  `url_env`, `unreachable_hint`, `models_path`, `chat_path`, `loads_models`;
- class methods: `key_envs_for(key_env)`, `models_url(node)`, `parse_models(data)`, `cost(usage)`,
  `cancel_url(node, reply_id)`;
- instance methods (an instance is one provider config + its key + an `httpx.Client`): `headers()`,
  `chat_url(node)`, `payload(request, model)`, `choose_model(node, target)`, `check_served(requested, served)`,
  `backend(response)`, `open(...)`, `raise_for_status(response)`, `chat(...)`.

No module-level import of core/config or core/routing (they import this package), nor of httpx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from exobridge import __version__

if TYPE_CHECKING:
    import httpx

    from exobridge.core.config import ProviderConfig
    from exobridge.core.model_targets import Target
    from exobridge.core.reply import Reply
    from exobridge.core.routing import ChatRequest


class Timeouts(NamedTuple):
    """Seconds: to connect, to the first token (or the whole reply), and of silence between tokens."""

    connect: float
    first_token: float
    idle: float


class StatusProbe:
    """How `providers status` checks a kind (a strategy name that core/provider_status.py implements)."""

    MODELS = "models"  # GET the model list (with the key when there is one)
    KEY_INFO = "key_info"  # OpenRouter's GET /key: key valid, credits left
    EXO_CLUSTER = "exo_cluster"  # /node_id or /healthcheck, then /state


# Fields of a chat request that passthrough (`ChatRequest.extra`) may never override.
RESERVED_FIELDS = frozenset({"model", "messages", "stream", "stream_options"})


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


class ProviderKind:
    """An OpenAI-compatible chat endpoint. Subclasses override only what differs."""

    name: ClassVar[str] = "openai"
    label: ClassVar[str] = "OpenAI-compatible"
    default_url: ClassVar[str | None] = None  # None: the user must give one
    default_timeouts: ClassVar[Timeouts] = Timeouts(5.0, 60.0, 60.0)
    default_key_env: ClassVar[str | None] = None
    needs_key: ClassVar[bool] = False  # a key is required even when no key_env is configured
    free: ClassVar[bool] = False  # every model costs nothing (cost() is always 0; shown "free")
    status_probe: ClassVar[str] = StatusProbe.MODELS
    sends_stream_usage: ClassVar[bool] = True  # sends stream_options.include_usage
    checks_served_model: ClassVar[bool] = False  # may substitute a model silently: check `model` in replies
    url_env: ClassVar[str | None] = None  # an environment variable that replaces the urls (comma-separated)
    unreachable_hint: ClassVar[str | None] = None  # what to tell the user when no node answers ({name})
    models_path: ClassVar[str] = "/models"
    model_list_seconds: ClassVar[float | None] = None  # wall clock for one model-list GET (None: 15 s, model_lists)
    chat_path: ClassVar[str] = "/chat/completions"
    loads_models: ClassVar[bool] = False  # `models load/unload` and the `load` setting (core/exo_loading.py)

    def __init__(self, config: ProviderConfig, key: str | None, http: httpx.Client) -> None:
        self.config = config
        self.key = key
        self.http = http

    @property
    def kind(self) -> str:
        """The kind's name (kept for callers of the old `client.kind`)."""
        return self.name

    # --- what a kind is ---------------------------------------------------------------------------------
    @classmethod
    def key_envs_for(cls, key_env: str | None) -> list[str]:
        """Environment variables that may hold the key, most specific first, for a configured `key_env`."""
        return [key_env] if key_env else []

    @classmethod
    def models_url(cls, node: str) -> str:
        return f"{node}{cls.models_path}"

    @classmethod
    def parse_models(cls, data: Any) -> list[dict[str, Any]] | None:
        """Entries `{"id", "free"?, "context_length"?, "hugging_face_id"?}` from an OpenAI-style model list
        (`{"data": [...]}` or a bare list); None when the shape is unknown."""
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            return None
        models: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            entry: dict[str, Any] = {"id": item["id"]}
            if cls.free:
                entry["free"] = True
            else:
                pricing = item.get("pricing")
                if isinstance(pricing, dict) and "prompt" in pricing and "completion" in pricing:
                    entry["free"] = _is_zero(pricing.get("prompt")) and _is_zero(pricing.get("completion"))
            if isinstance(item.get("hugging_face_id"), str):
                entry["hugging_face_id"] = item["hugging_face_id"]
            context = item.get("context_length")
            if isinstance(context, int) and not isinstance(context, bool) and context > 0:
                entry["context_length"] = context
            models.append(entry)
        return models

    @classmethod
    def cost(cls, usage: dict[str, Any] | None) -> float | None:
        """The cost of one reply in USD from its usage, when the kind reports one; free kinds say 0."""
        return 0.0 if cls.free else None

    # --- how one request differs ------------------------------------------------------------------------
    def chat_url(self, node: str) -> str:
        return f"{node}{self.chat_path}"

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"exobridge/{__version__}", "Accept": "application/json, text/event-stream"}
        headers.update(self.config.headers)
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def secrets(self) -> list[str]:
        """Every secret this client sends: the key and the configured header values that look secret."""
        from exobridge.core import http as http_mod

        return http_mod.secrets_of(self.config, self.key)

    def choose_model(self, node: str, target: Target) -> str:
        """The id to send to this node; may raise a Failure when the node cannot serve the model."""
        assert target.model is not None
        return target.model

    def check_served(self, requested: str, served: str) -> None:
        """Called with the first `model` field of a reply; cloud kinds answer with dated or routed ids."""

    def backend(self, response: httpx.Response) -> str | None:
        """The backend that served, when the provider names it in a header."""
        return None

    @classmethod
    def cancel_url(cls, node: str, reply_id: str) -> str | None:
        """Where to ask the node to stop generating a reply whose client left (`POST`), beyond closing the
        connection; None when closing it is all there is."""
        return None

    def payload(self, request: ChatRequest, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            key: value for key, value in (getattr(request, "extra", None) or {}).items() if key not in RESERVED_FIELDS
        }
        body.update({"model": model, "messages": request.messages, "stream": request.stream})
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stream and self.sends_stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    # --- the exchange -----------------------------------------------------------------------------------
    def timeout(self) -> httpx.Timeout:
        from exobridge.core import http as http_mod

        return http_mod.timeout_for(self.config)

    def open(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        timeout: httpx.Timeout | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request and return the streaming response, turning transport errors into Failures."""
        from exobridge.core import http as http_mod

        return http_mod.send(
            self.http,
            method,
            url,
            provider=self.config,
            json_body=json_body,
            headers=headers if headers is not None else self.headers(),
            timeout=timeout or self.timeout(),
        )

    def raise_for_status(self, response: httpx.Response, *, deadline: float | None = None) -> None:
        """A Failure for a non-2xx reply, from its (capped, deadline-bounded) error body."""
        from exobridge.core import http as http_mod

        http_mod.raise_for_status(response, self.config, deadline=deadline)

    def chat(
        self,
        node: str,
        model: str,
        request: ChatRequest,
        emit: Callable[[str], None],
        keep_text: bool = True,
        emit_part: Callable[[dict[str, Any]], None] | None = None,
        on_served: Callable[[str, str | None], None] | None = None,
        on_thinking: Callable[[], None] | None = None,
    ) -> tuple[Reply, str | None]:
        """One attempt against one node. Returns the reply and the backend that served it.

        `emit` gets the text as it comes, `emit_part` the tool calls and reasoning (see `reply.ReplyBuilder`),
        `on_served` the model id the reply names, once `check_served` accepted it, and the reply's `id`;
        `on_thinking` hears of reasoning before any text when `emit_part` is not given.

        From sending until the first token (or the whole non-streamed reply) is one wall-clock deadline,
        `first_token_timeout`: no trickle of bytes in the status line, headers, an error body or a JSON body
        extends it. After the first token, `idle_timeout` bounds each silence.
        """
        from exobridge.core import http as http_mod
        from exobridge.core.reply import ReplyBuilder, read_json_reply, read_stream

        started = time.monotonic()
        deadline = started + self.config.first_token_timeout

        def check_model(served: str) -> None:
            self.check_served(model, served)
            if on_served is not None:
                on_served(served, builder.reply_id)

        builder = ReplyBuilder(emit, check_model, keep_text, emit_part, on_thinking)
        response = http_mod.send(
            self.http,
            "POST",
            self.chat_url(node),
            provider=self.config,
            json_body=self.payload(request, model),
            headers=self.headers(),
            timeout=self.timeout(),
            deadline=deadline,
        )
        try:
            self.raise_for_status(response, deadline=deadline)
            backend = self.backend(response)
            content_type = response.headers.get("content-type", "").lower()
            if "text/event-stream" in content_type:
                reply = read_stream(
                    response,
                    builder,
                    started,
                    self.config.first_token_timeout,
                    self.config.idle_timeout,
                    reusable=http_mod.reuses_connections(self.http),
                )
            else:
                reply = read_json_reply(response, builder, request.stream, deadline, self.config.first_token_timeout)
        finally:
            response.close()
        return reply, backend
