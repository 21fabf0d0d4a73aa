"""Loading recorded HTTP replies, replaying them through a loopback server, and computing by hand what a
client should make of them.

Two sources use the same shape (`Recorded`):
* the third-party recordings in ../shared/recordings (VCR and pydantic-ai YAML cassettes, ai-sdk-provider JSON
  triples, Exo legacy raw HTTP captures). They are not in the repo: tests that read them skip when absent.
* our own synthetic fixtures in tests/fixtures/replies/*.http, raw HTTP responses in the Exo capture format.

The expectation helpers (`expected_reply`) parse SSE and JSON in the simplest possible way, independently of
exobridge.core.reply, so a replay checks the real client path against a second reading of the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from exobridge.core import config as config_mod
from exobridge.core.model_targets import Target
from exobridge.core.routing import ChatRequest, ChatResult, Router
from tests.conftest import SHARED_RECORDINGS
from tests.loopback import Exchange, LoopbackServer, Request, stream_words

ABSENT_REASON = "../shared/recordings not present (third-party recordings are not in the repo)"
requires_recordings = pytest.mark.skipif(not SHARED_RECORDINGS.is_dir(), reason=ABSENT_REASON)

# Headers the loopback server writes itself, or that no longer describe the body we replay (already de-chunked,
# already decompressed), or that carry cookies.
NOT_REPLAYED = {
    "content-type",
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "connection",
    "cache-control",
    "set-cookie",
    "keep-alive",
}


@dataclass
class Recorded:
    """One recorded request/response pair."""

    name: str
    method: str
    uri: str
    status: int
    headers: dict[str, str]  # lower-case names; repeated values joined with ", "
    body: bytes
    request: dict[str, Any] | None = None  # the JSON request body when it was recorded
    source: Path | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def is_sse(self) -> bool:
        return "text/event-stream" in self.content_type.lower()

    @property
    def is_chat(self) -> bool:
        return self.method == "POST" and self.uri.split("?")[0].rstrip("/").endswith("chat/completions")

    @property
    def stream_requested(self) -> bool:
        if self.request is not None and "stream" in self.request:
            return bool(self.request["stream"])
        return self.is_sse

    @property
    def requested_model(self) -> str | None:
        model = (self.request or {}).get("model")
        return model if isinstance(model, str) else None

    def replay_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k not in NOT_REPLAYED}


def _headers(raw: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        out[str(name).lower()] = ", ".join(str(v) for v in values)
    return out


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


def _json_or_none(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, bytes | str) and value:
        try:
            data = json.loads(value)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return None


# --- the formats -----------------------------------------------------------------------------------


def load_cassette(path: Path) -> list[Recorded]:
    """A vcrpy cassette, or pydantic-ai's variant where JSON bodies are stored as `parsed_body`.

    A parsed body is re-serialised with json.dumps: its original bytes and key order are lost anyway.
    """
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the VCR cassettes")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[Recorded] = []
    for index, interaction in enumerate(data.get("interactions", [])):
        request, response = interaction["request"], interaction["response"]
        if "parsed_body" in response:
            body = json.dumps(response["parsed_body"]).encode("utf-8")
        else:
            raw = response.get("body")
            body = _as_bytes(raw.get("string") if isinstance(raw, dict) else raw)
        if "parsed_body" in request:
            request_body = _json_or_none(request["parsed_body"])
        else:
            raw = request.get("body")
            request_body = _json_or_none(raw.get("string") if isinstance(raw, dict) else raw)
        status = response["status"]
        out.append(
            Recorded(
                name=f"{path.stem}#{index}",
                method=str(request["method"]).upper(),
                uri=str(request["uri"]),
                status=int(status["code"] if isinstance(status, dict) else status),
                headers=_headers(response.get("headers") or {}),
                body=body,
                request=request_body,
                source=path,
            )
        )
    return out


def load_ai_sdk(stem: Path) -> Recorded:
    """An OpenRouter ai-sdk-provider fixture: `<id>.request.json`, `<id>.response.json` (raw body),
    `<id>.response.meta.json` (status and headers)."""
    request = json.loads(stem.with_name(stem.name + ".request.json").read_text(encoding="utf-8"))
    meta = json.loads(stem.with_name(stem.name + ".response.meta.json").read_text(encoding="utf-8"))
    body = stem.with_name(stem.name + ".response.json").read_bytes()
    request_body = request.get("body", {})
    return Recorded(
        name=stem.name,
        method=str(request.get("method", "POST")).upper(),
        uri=str(request.get("url", "")),
        status=int(meta["status"]),
        headers=_headers(meta.get("headers") or {}),
        body=body,
        request=_json_or_none(request_body.get("json") if isinstance(request_body, dict) else request_body),
        source=stem,
    )


def parse_http(data: bytes, name: str, uri: str = "/v1/chat/completions", method: str = "POST") -> Recorded:
    """A whole HTTP/1.1 response: status line, CRLF header lines, empty line, de-chunked body."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"{name}: no CRLF CRLF after the header block")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"{name}: not a status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        key = key.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return Recorded(name=name, method=method, uri=uri, status=int(parts[1]), headers=headers, body=body)


def load_http(path: Path) -> Recorded:
    recorded = parse_http(path.read_bytes(), path.stem)
    recorded.source = path
    return recorded


def shared_recordings(root: Path = SHARED_RECORDINGS) -> list[Recorded]:
    """Every interaction of every recording under `root` (empty when the folder is absent)."""
    if not root.is_dir():
        return []
    out: list[Recorded] = []
    for path in sorted(root.rglob("*.yaml")):
        out.extend(load_cassette(path))
    for meta in sorted(root.rglob("*.response.meta.json")):
        out.append(load_ai_sdk(meta.with_name(meta.name.removesuffix(".response.meta.json"))))
    for path in sorted((root / "exo-legacy").glob("chat-*.txt")):
        out.append(load_http(path))
    return out


def recording_params(items: list[Recorded]) -> list[Any]:
    """pytest params, one per recording; a single skipped param (with the reason) when there are none."""
    if not items:
        return [pytest.param(None, id="absent", marks=pytest.mark.skip(reason=ABSENT_REASON))]
    return [pytest.param(r, id=r.name) for r in items]


def provider_kind(recorded: Recorded) -> str:
    """Which exobridge provider kind talks to the host this was recorded from."""
    source = str(recorded.source or "")
    if "exo-legacy" in source:
        return "exo"
    if "openrouter" in recorded.uri or "/openrouter/" in source:
        return "openrouter"
    if "huggingface" in recorded.uri or "/huggingface/" in source:
        return "huggingface"
    return "openai"


# --- reading the bytes by hand -----------------------------------------------------------------------


def sse_data(body: bytes) -> Iterator[str]:
    """The `data` of each SSE event, the plain way: blank-line separated blocks, `data:` lines, comments
    dropped, one optional space after the colon, CRLF treated as LF."""
    text = body.decode("utf-8").replace("\r\n", "\n")
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line.startswith("data:")]
        if lines:
            yield "\n".join(line[5:].removeprefix(" ") for line in lines)


@dataclass
class Expected:
    """What a client should make of a reply: text, first served model, last usage, or the error."""

    text: str = ""
    model: str | None = None
    usage: dict[str, Any] | None = None
    error: Any = None  # the in-band `error` value, or the HTTP status of a non-2xx reply
    saw_done: bool = False
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.text)


def _fold(expected: Expected, obj: dict[str, Any], whole: bool) -> None:
    if expected.model is None and isinstance(obj.get("model"), str) and obj["model"]:
        expected.model = obj["model"]
    if isinstance(obj.get("usage"), dict):
        expected.usage = obj["usage"]
    choices = obj.get("choices") or [{}]
    part = choices[0].get("message") if whole else (choices[0].get("delta") or choices[0].get("message"))
    content = (part or {}).get("content")
    if isinstance(content, str):
        expected.text += content


def expected_reply(recorded: Recorded) -> Expected:
    expected = Expected()
    if recorded.status >= 300:
        expected.error = recorded.status
        return expected
    if recorded.is_sse:
        for data in sse_data(recorded.body):
            if data.strip() == "[DONE]":
                expected.saw_done = True
                break
            obj = json.loads(data)
            expected.chunks.append(obj)
            if obj.get("error"):
                expected.error = obj["error"]
                break
            _fold(expected, obj, whole=False)
        return expected
    obj = json.loads(recorded.body)
    if obj.get("error"):
        expected.error = obj["error"]
        return expected
    _fold(expected, obj, whole=True)
    return expected


# --- replaying ----------------------------------------------------------------------------------------

PIECE = 97  # odd-sized transfer chunks, so events and even UTF-8 sequences straddle chunk boundaries
PROVIDER_NAME = {"exo": "exo", "openrouter": "openrouter", "huggingface": "huggingface", "openai": "plain"}
KEYS = {"openrouter": "sk-or-v1-test0000", "huggingface": "hf_test0000", "plain": "test0000"}
BACKUP_TEXT = ["from ", "backup"]


def serve(recorded: Recorded, exchange: Exchange, piece: int = PIECE) -> None:
    """Send the recorded status, content type, headers and body bytes. SSE goes out chunked in pieces."""
    headers = recorded.replay_headers()
    content_type = recorded.content_type or "application/octet-stream"
    if recorded.is_sse:
        exchange.start_stream(recorded.status, content_type, headers)
        for start in range(0, len(recorded.body), piece):
            exchange.chunk(recorded.body[start : start + piece])
        exchange.end()
    else:
        exchange.reply(recorded.status, recorded.body, content_type, headers)


def chat_path(kind: str) -> str:
    return "/v1/chat/completions" if kind == "exo" else "/chat/completions"


def mount(server: LoopbackServer, recorded: Recorded, kind: str, listed: str | None = None, piece: int = PIECE) -> None:
    """Route the chat endpoint of `kind` to the recording; an Exo node also lists a model (by default the
    one the recording serves)."""
    server.route("POST", chat_path(kind))(lambda ex: serve(recorded, ex, piece))
    if kind == "exo":
        served = listed or expected_reply(recorded).model or "dummy"

        def models(ex: Exchange) -> None:
            ex.reply(200, {"object": "list", "data": [{"id": served, "object": "model", "ready": True}]})

        server.route("GET", "/v1/models")(models)


@dataclass
class Replayed:
    result: ChatResult
    pieces: list[str]  # text as the observer received it
    parts: list[dict[str, Any]]  # tool calls and reasoning as a relaying observer received them
    primary: LoopbackServer
    backup: LoopbackServer

    @property
    def posts(self) -> list[Request]:
        return [r for r in self.primary.requests if r.method == "POST"]


class _Pieces:
    def __init__(self, relay: bool = False) -> None:
        self.pieces: list[str] = []
        self.parts: list[dict[str, Any]] = []
        self.relays_parts = relay

    def text(self, piece: str) -> None:
        self.pieces.append(piece)

    def part(self, fields: dict[str, Any]) -> None:
        self.parts.append(fields)

    def attempt_started(self, *args: Any) -> None:
        pass

    def attempt_ended(self, *args: Any) -> None:
        pass


def replay(
    make_server: Callable[[], LoopbackServer],
    recorded: Recorded,
    kind: str,
    model: str,
    stream: bool,
    piece: int = PIECE,
    listed: str | None = None,
    relay: bool = False,
) -> Replayed:
    """Serve `recorded` as a provider of `kind`, with a healthy backup behind it, and run the in-process Router
    (the real client path) for one chat request. `relay`: the observer relays tool calls and reasoning, as
    serve's does; without it, as the terminal's."""
    name = PROVIDER_NAME[kind]
    primary, backup = make_server(), make_server()
    mount(primary, recorded, kind, listed, piece)
    backup.route("POST", "/chat/completions")(stream_words(BACKUP_TEXT, model="backup-model"))
    raw: dict[str, Any] = {"providers": {n: {"enabled": False} for n in ("exo", "openrouter", "huggingface")}}
    raw["providers"][name] = {"kind": kind, "url": primary.url, "enabled": True, "priority": 0}
    raw["providers"]["backup"] = {"kind": "openai", "url": backup.url, "priority": 9}
    cfg = config_mod.build(raw, Path("test.toml"), env={})
    observer = _Pieces(relay)
    router = Router(cfg, cli_keys=KEYS, observer=observer, sleep=lambda s: None)  # type: ignore[arg-type]
    request = ChatRequest([{"role": "user", "content": "Hi"}], model=model, stream=stream)
    targets = [Target(cfg.providers[name], model), Target(cfg.providers["backup"], "backup-model")]
    return Replayed(router.run(request, targets), observer.pieces, observer.parts, primary, backup)
