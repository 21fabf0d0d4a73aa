"""A loopback "chaos" provider: each request gets one fault, picked by a seeded random generator, from the
ways real and hostile servers misbehave (issue 9): drips, endless and decompression-bomb bodies, huge SSE
lines, resets, bad JSON, terminal escapes and Rich markup in errors, in-band errors, secrets echoed back,
absurd Retry-After, redirects. Tests assert what must hold whatever the mix: no traceback, a documented exit
code, a bounded time and memory, no secret in any output.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from functools import cache

from tests.loopback import Exchange, Handler, LoopbackServer, chunk, completion

CANARY_KEY = "sk-chaos-CANARYkey0123456789abcdefXYZ"
CANARY_HEADER = "hdr-CANARYsecret9876543210zyxwvu"
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\x9b31m\x7f"
MARKUP = "[/oops] [bold red]red[/bold red] [link=http://evil.example]click[/link]"


# Short timeouts, so a stalled fault costs a fraction of a second.
FAST = {"connect_timeout": 0.5, "first_token_timeout": 0.3, "idle_timeout": 0.3}


def chaos_config_text(urls: list[str], first_kind: str = "openai", **extra: object) -> str:
    """A config whose only providers are the chaos servers at `urls` (the first of kind `first_kind`), keyed by
    CHAOS_KEY and sending the canary header; `extra` adds keys to every one of them (e.g. `cooldown=0`)."""
    lines = ['default_model = "m"']
    for name in ("exo", "openrouter", "huggingface"):
        lines += [f"[providers.{name}]", "enabled = false"]
    for index, url in enumerate(urls):
        lines += [
            f"[providers.chaos{index}]",
            f'kind = "{first_kind if index == 0 else "openai"}"',
            f'url = "{url}"',
            f"priority = {index + 1}",
            'key_env = "CHAOS_KEY"',
            *(f"{k} = {v}" for k, v in {**FAST, **extra}.items()),
            f'headers = {{ "X-Api-Key" = "{CANARY_HEADER}" }}',
        ]
    return "\n".join(lines) + "\n"


@cache
def gzip_bomb() -> bytes:
    """~64 KiB that unpacks to 64 MiB of JSON whitespace."""
    return gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", compresslevel=9)


def _echo_secrets(ex: Exchange) -> str:
    auth = ex.request.headers.get("authorization", "")
    header = ex.request.headers.get("x-api-key", "")
    return f"{'p' * 250} you sent {auth} and {header} {auth[-20:]} {header[3:15]}"


def ok(ex: Exchange) -> None:
    ex.start_stream()
    ex.event(chunk(role=True))
    for word in ("chaos ", "answered"):
        ex.event(chunk(word))
    ex.event(chunk(finish="stop"))
    ex.event("[DONE]")
    ex.end()


def whole_ok(ex: Exchange) -> None:
    ex.reply(200, completion("chaos answered"))


def drip_headers(ex: Exchange) -> None:
    ex.raw(b"HTTP/1.1 200 OK\r\n")
    ex.drip(b"X-Drip: 1\r\n", forever=True)


def drip_json(ex: Exchange) -> None:
    ex.head(200, {"Content-Type": "application/json", "Content-Length": "1000000"})
    ex.drip(b" ", forever=True)


def drip_error(ex: Exchange) -> None:
    ex.head(503, {"Content-Type": "application/json", "Content-Length": "1000000"})
    ex.drip(b"{", forever=True)


def drip_sse(ex: Exchange) -> None:
    ex.start_stream()
    ex.drip(b"1\r\n:\r\n", forever=True)


def endless_json(ex: Exchange) -> None:
    ex.head(200, {"Content-Type": "application/json"})
    ex.raw(b'{"choices": [{"message": {"content": "')
    ex.flood(b"a" * 65536)


def bomb(ex: Exchange) -> None:
    body = gzip_bomb()
    ex.head(200, {"Content-Type": "application/json", "Content-Encoding": "gzip", "Content-Length": str(len(body))})
    ex.raw(body)


def huge_line(ex: Exchange) -> None:
    ex.start_stream()
    ex.chunk(b"data: " + b"x" * (3 * 1024 * 1024))
    ex.stall()


def reset(ex: Exchange) -> None:
    ex.reset()


def reset_mid_stream(ex: Exchange) -> None:
    ex.start_stream()
    ex.event(chunk("partial "))
    ex.reset()


def bad_json(ex: Exchange) -> None:
    ex.reply(200, '{"choices": [', content_type="application/json")


def html(ex: Exchange) -> None:
    ex.reply(200, "<html><body>Gateway " + ESCAPES + "</body></html>", content_type="text/html")


def escapes_in_error(ex: Exchange) -> None:
    ex.reply(500, {"error": {"message": f"bad {ESCAPES} and {MARKUP}"}})


def inband_error(ex: Exchange) -> None:
    ex.start_stream()
    ex.event({"error": {"message": f"overloaded {ESCAPES}", "code": 502}})
    ex.end()


def echo_key_401(ex: Exchange) -> None:
    ex.reply(401, {"error": {"message": _echo_secrets(ex)}})


def echo_key_in_stream(ex: Exchange) -> None:
    ex.start_stream()
    ex.event({"error": {"message": _echo_secrets(ex)}})
    ex.end()


def echo_key_text_500(ex: Exchange) -> None:
    ex.reply(500, _echo_secrets(ex), content_type="text/plain")


def huge_retry_after(ex: Exchange) -> None:
    ex.reply(429, {"error": "slow down"}, headers={"Retry-After": "99999999999999"})


def redirect(ex: Exchange) -> None:
    ex.reply(307, "", headers={"Location": "http://127.0.0.1:1/\x1b]0;title\x07" + MARKUP})


def stall(ex: Exchange) -> None:
    ex.stall()


def served_model_escape(ex: Exchange) -> None:
    ex.start_stream()
    ex.event(chunk("ok", model="m\x1b[2J[/x]"))
    ex.event("[DONE]")
    ex.end()


FAULTS: dict[str, Handler] = {
    fault.__name__: fault
    for fault in (
        ok,
        whole_ok,
        drip_headers,
        drip_json,
        drip_error,
        drip_sse,
        endless_json,
        bomb,
        huge_line,
        reset,
        reset_mid_stream,
        bad_json,
        html,
        escapes_in_error,
        inband_error,
        echo_key_401,
        echo_key_in_stream,
        echo_key_text_500,
        huge_retry_after,
        redirect,
        stall,
        served_model_escape,
    )
}


def chaos(seed: int, only: list[str] | None = None) -> tuple[Handler, list[str]]:
    """A handler serving one seeded-random fault per request, and the list the faults served are logged to."""
    rng = random.Random(seed)
    names = only or sorted(FAULTS)
    served: list[str] = []

    def handler(ex: Exchange) -> None:
        name = rng.choice(names)
        served.append(name)
        FAULTS[name](ex)

    return handler, served


def chaos_server(make: Callable[[], LoopbackServer], seed: int, only: list[str] | None = None) -> LoopbackServer:
    """A loopback server whose chat route (both `/chat/completions` and Exo's `/v1/…`) is chaos."""
    srv = make()
    handler, served = chaos(seed, only)
    srv.route("POST", "/chat/completions")(handler)
    srv.route("POST", "/v1/chat/completions")(handler)
    srv.served = served  # type: ignore[attr-defined]
    return srv


def secret_pieces(secret: str, size: int = 8) -> list[str]:
    """Every `size`-character piece of a secret: none may appear in any output."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def leaked(text: str, secrets: tuple[str, ...] = (CANARY_KEY, CANARY_HEADER)) -> list[str]:
    return [piece for secret in secrets for piece in secret_pieces(secret) if piece in text]


def as_json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
