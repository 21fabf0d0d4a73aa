"""Any OpenAI-compatible chat endpoint. The other provider kinds refine this one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exobridge import __version__
from exobridge.core.config import ProviderConfig
from exobridge.core.failover import Failure, FailureKind, classify_http, parse_error_body
from exobridge.core.reply import Reply, ReplyBuilder, read_sse_body, read_stream

if TYPE_CHECKING:
    import httpx

    from exobridge.core.model_map import Target
    from exobridge.core.routing import ChatRequest

ERROR_BODY_LIMIT = 64 * 1024


class OpenAICompatible:
    kind = "openai"
    sends_stream_usage = True

    def __init__(self, config: ProviderConfig, key: str | None, http: httpx.Client) -> None:
        self.config = config
        self.key = key
        self.http = http

    # --- what differs between kinds -------------------------------------------------------------
    def chat_url(self, node: str) -> str:
        return f"{node}/chat/completions"

    def models_url(self, node: str) -> str:
        return f"{node}/models"

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"exobridge/{__version__}", "Accept": "application/json, text/event-stream"}
        headers.update(self.config.headers)
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def choose_model(self, node: str, target: Target) -> str:
        """The id to send to this node; may raise a Failure when the node cannot serve the model."""
        assert target.model is not None
        return target.model

    def check_served(self, requested: str, served: str) -> None:
        """Cloud providers answer with dated or routed ids; only Exo substitutes silently."""

    def cost(self, usage: dict[str, Any] | None) -> float | None:
        return None

    def backend(self, response: httpx.Response) -> str | None:
        return None

    # --- the exchange -----------------------------------------------------------------------------
    def payload(self, request: ChatRequest, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": request.messages, "stream": request.stream}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stream and self.sends_stream_usage:
            body["stream_options"] = {"include_usage": True}
        return body

    def timeout(self) -> httpx.Timeout:
        import httpx

        c = self.config
        return httpx.Timeout(
            connect=c.connect_timeout,
            read=c.first_token_timeout,
            write=c.first_token_timeout,
            pool=c.connect_timeout,
        )

    def open(
        self, method: str, url: str, *, json_body: Any = None, timeout: httpx.Timeout | None = None
    ) -> httpx.Response:
        """Send a request and return the streaming response, turning transport errors into Failures."""
        import httpx

        request = self.http.build_request(
            method, url, json=json_body, headers=self.headers(), timeout=timeout or self.timeout()
        )
        try:
            return self.http.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectTimeout:
            raise Failure(FailureKind.CONNECT, f"connect timeout after {self.config.connect_timeout:g} s") from None
        except httpx.ConnectError as exc:
            raise Failure(FailureKind.CONNECT, _connect_reason(exc)) from None
        except httpx.TimeoutException:
            waited = timeout.read if timeout is not None and timeout.read is not None else None
            waited = self.config.first_token_timeout if waited is None else waited
            raise Failure(FailureKind.FIRST_TOKEN_TIMEOUT, f"no reply within {waited:g} s") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise Failure(FailureKind.STREAM_BROKEN, f"connection reset ({exc or type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise Failure(FailureKind.CONNECT, f"{type(exc).__name__}: {exc}") from None

    def raise_for_status(self, response: httpx.Response) -> None:
        import httpx

        if response.status_code < 300:
            return
        try:
            body = b""
            for part in response.iter_bytes():
                body += part
                if len(body) > ERROR_BODY_LIMIT:
                    break
        except httpx.HTTPError:
            pass
        finally:
            response.close()
        if 300 <= response.status_code < 400:
            location = response.headers.get("location", "?")
            raise Failure(
                FailureKind.BAD_RESPONSE,
                f"HTTP {response.status_code} redirect to {location} (not followed)",
                response.status_code,
            )
        error = parse_error_body(body, response.headers.get("content-type", ""))
        raise classify_http(response.status_code, error, response.headers.get("retry-after"))

    def chat(
        self,
        node: str,
        model: str,
        request: ChatRequest,
        emit: Callable[[str], None],
        keep_text: bool = True,
    ) -> tuple[Reply, str | None]:
        """One attempt against one node. Returns the reply and the backend that served it."""
        import httpx

        started = time.monotonic()
        builder = ReplyBuilder(emit, lambda served: self.check_served(model, served), keep_text)
        response = self.open("POST", self.chat_url(node), json_body=self.payload(request, model))
        self.raise_for_status(response)
        backend = self.backend(response)
        content_type = response.headers.get("content-type", "").lower()
        if "text/event-stream" in content_type:
            reply = read_stream(response, builder, started, self.config.first_token_timeout, self.config.idle_timeout)
            return reply, backend
        try:
            body = response.read()
        except httpx.TimeoutException:
            raise Failure(
                FailureKind.FIRST_TOKEN_TIMEOUT, f"no reply within {self.config.first_token_timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise Failure(FailureKind.STREAM_BROKEN, f"connection broke while reading the reply ({exc})") from None
        finally:
            response.close()
        if request.stream and body.lstrip().startswith(b"data:"):
            return read_sse_body(body, builder), backend
        try:
            data = json.loads(body)
        except ValueError:
            snippet = body[:60].decode("utf-8", errors="replace").strip()
            what = "HTML" if snippet.startswith("<") else "invalid JSON"
            raise Failure(FailureKind.BAD_RESPONSE, f"{what} in a 200 reply: {snippet!r}", 200) from None
        builder.completion(data)
        return builder.result(), backend


def _connect_reason(exc: Exception) -> str:
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "host not found (DNS)"
    if "timed out" in lowered:
        return "connect timeout"
    return f"cannot connect ({text or type(exc).__name__})"
