"""The one owner of HTTP: every httpx client, every timeout, every transport failure, every capped read.

Rules every network operation of exobridge follows (README "Deadlines and size caps"):

- **Clients** come from `client()` / `async_client()`: redirects are never followed, proxies come from the
  environment (`trust_env=True`, checked first by `core.proxies.validate`), and a malformed or unsupported
  proxy setting raises `errors.ProxyError` (exit 4, "invalid proxy setting in the environment: …") instead of
  whatever httpx raises. Connections are not kept alive by default; a client that sends one request at a time
  may keep them (`client(keepalive=True)`: serve's upstream clients), and a deadline still cuts a reused one.
- **Timeouts** come from `timeout_for(provider, read=None)`: the provider's connect timeout, and a per-read
  timeout (default: the longer of first_token_timeout and idle_timeout).
- **Deadlines, not read timeouts.** A per-read timeout restarts with every byte, so a server that drips one
  byte a second never trips it. `send(..., deadline=)` and `read_body(..., deadline=)` take a wall-clock
  deadline (`time.monotonic()` seconds) and shut the socket down when it passes, whatever arrives.
- **Size caps.** `read_body(response, cap=, deadline=)` counts *decoded* bytes (after gzip/deflate/br), so a
  small gzip bomb fails as soon as it unpacks past the cap. Defaults: `JSON_CAP` (4 MiB) for replies,
  `MODEL_LIST_CAP` (8 MiB), `ERROR_BODY_CAP` (64 KiB, kept: the rest is dropped, not an error), and
  `SSE_LINE_CAP` (1 MiB per SSE line or event) and `REPLY_TEXT_CAP` (16 Mi characters of reply text), both
  enforced in core/reply.py. Past a cap an attempt fails with `FailureKind.BAD_RESPONSE` and routing fails over
  (or, after text was printed, stops with the partial text: exit 5). Decompression happens here, in steps of
  `DECODE_STEP` (64 KiB), so a compressed bomb cannot spike memory either.
- **Transport failures** become `Failure`s through `transport_failure(exc, provider)`, one wording each:
  "connection refused", "host not found (DNS)", "connect timeout after N s", "TLS handshake failed (…)",
  "proxy unreachable (…)", "connection reset (…)", "no reply within N s".

`get_json(http, url, *, provider, headers, deadline_s, cap)` is the JSON GET for model lists, probes and
checks: `(status, data or None, body)`, raising `Failure` on transport trouble, at the deadline, past the cap.
`secrets_of(provider, key)` lists what must be redacted from anything a provider sends back.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from exobridge.core.errors import Failure, FailureKind

if TYPE_CHECKING:
    import ssl

    import httpx

    from exobridge.core.config import ProviderConfig

KiB = 1024
MiB = 1024 * KiB
JSON_CAP = 4 * MiB  # a whole (non-streamed) chat reply, a probe's JSON
MODEL_LIST_CAP = 8 * MiB  # a provider's model list (OpenRouter's is ~1 MiB today)
ERROR_BODY_CAP = 64 * KiB  # what is kept of an error body; the rest is not read
SSE_LINE_CAP = 1 * MiB  # one SSE line, and one event's data
REPLY_TEXT_CAP = 16 * MiB  # characters of text in one reply (an endless stream ends; past it: exit 5)
PROBE_DEADLINE = 5.0  # seconds for one probe / model-list GET when the caller gives none

_HEADERS = {"Accept-Encoding": "gzip, deflate"}  # what iter_decoded can unpack in bounded steps


# --- clients ---------------------------------------------------------------------------------------------


def _proxy_error(problem: str) -> Exception:
    try:
        from exobridge.core.errors import ProxyError
    except ImportError:  # errors.py not there yet during the refactor
        from exobridge.core.config import ConfigError

        return ConfigError("environment", "", f"invalid proxy setting in the environment: {problem}")
    return ProxyError(f"invalid proxy setting in the environment: {problem}")


def _check_proxies(env: Mapping[str, str] | None) -> None:
    variables = os.environ if env is None else env
    if not any(name[-6:].lower() == "_proxy" for name in variables):
        return  # core/proxies.py reads only *_PROXY variables (any case): with none there is nothing to check
    try:
        from exobridge.core import proxies
    except ImportError:
        return
    proxies.validate(env)


@functools.lru_cache(maxsize=4)
def _tls_context(trust_env: bool, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context(trust_env=trust_env)


def tls_context(trust_env: bool = True) -> ssl.SSLContext:
    """The process-wide TLS context (building one costs ~50 ms; SSL_CERT_FILE / SSL_CERT_DIR still apply)."""
    return _tls_context(trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def _options(trust_env: bool, keepalive: bool, options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("verify", tls_context(trust_env))
    return {
        "follow_redirects": False,
        "trust_env": trust_env,
        "limits": _limits(keepalive),
        "headers": _HEADERS,
        **options,
    }


def _limits(keepalive: bool) -> httpx.Limits:
    import httpx

    return httpx.Limits(max_keepalive_connections=None if keepalive else 0)


def client(
    *, trust_env: bool = True, keepalive: bool = False, env: Mapping[str, str] | None = None, **options: Any
) -> httpx.Client:
    """A sync client: no redirects, proxies from the environment, `errors.ProxyError` for a broken proxy.

    `keepalive=False` (the default) opens a fresh connection per request. `keepalive=True` keeps connections
    for the next request (no new TCP and TLS handshake), for a caller that sends **one request at a time** on
    this client: `send()` records every connection the client opens, and a deadline cuts them all, so a
    reused connection that stalls is cut at the deadline like a new one (idle ones are simply reopened).
    """
    import httpx

    if trust_env:
        _check_proxies(env)
    try:
        made = httpx.Client(**_options(trust_env, keepalive, options))
    except (ValueError, ImportError, httpx.InvalidURL) as exc:  # what httpx raises for a proxy it cannot use
        raise _proxy_error(str(exc) or type(exc).__name__) from None
    if keepalive:
        _POOLED[made] = PooledStreams()
    return made


def reuses_connections(http: httpx.Client) -> bool:
    """Whether `http` keeps connections (made by `client(keepalive=True)`): read a reply to its end, then."""
    return _pooled(http) is not None


def _pooled(http: Any) -> PooledStreams | None:
    try:
        return _POOLED.get(http)
    except TypeError:  # not a client of ours (a test double that cannot be weakly referenced)
        return None


def async_client(
    *, trust_env: bool = True, keepalive: bool = True, env: Mapping[str, str] | None = None, **options: Any
) -> httpx.AsyncClient:
    """The async twin of `client()` (for front ends that run an event loop)."""
    import httpx

    if trust_env:
        _check_proxies(env)
    try:
        return httpx.AsyncClient(**_options(trust_env, keepalive, options))
    except (ValueError, ImportError, httpx.InvalidURL) as exc:
        raise _proxy_error(str(exc) or type(exc).__name__) from None


def timeout_for(provider: ProviderConfig, read: float | None = None) -> httpx.Timeout:
    """Per-operation timeouts from a provider's config. Wall-clock bounds are deadlines, not these."""
    import httpx

    if read is None:
        read = max(provider.first_token_timeout, provider.idle_timeout)
    return httpx.Timeout(connect=provider.connect_timeout, read=read, write=read, pool=provider.connect_timeout)


def _default_timeout(provider: ProviderConfig | None) -> Any:
    import httpx

    return timeout_for(provider) if provider is not None else httpx.USE_CLIENT_DEFAULT


def secrets_of(provider: ProviderConfig | None, key: str | None) -> list[str]:
    """What must never come back out of a provider's replies: its key and its configured header credentials."""
    from exobridge.core.secrets import header_secrets

    found = [key] if key else []
    for name, value in (provider.headers if provider is not None else {}).items():
        found.extend(header_secrets(name, value))
    return found


def redact(text: str, secrets: list[str]) -> str:
    """`text` without any secret, nor any 8-character piece of one (core/secrets.py's one redactor)."""
    from exobridge.core.secrets import redact as redact_secrets

    return redact_secrets(text, secrets)


# --- failures --------------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:160]


def transport_failure(
    exc: BaseException, provider: ProviderConfig | None = None, waited: float | None = None, url: str | None = None
) -> Failure:
    """One exobridge wording per transport failure (`waited`: the read deadline, for timeouts). With `url`, a
    failure to connect through the proxy the environment names for it says so: "proxy unreachable (…)"."""
    failure = _transport_failure(exc, provider, waited)
    if url is not None and failure.kind is FailureKind.CONNECT and not failure.reason.startswith("proxy"):
        proxy = _proxy_for(url)
        if proxy is not None:
            failure.reason = f"proxy unreachable ({proxy}: {failure.reason})"
    return failure


def _proxy_for(url: str) -> str | None:
    try:
        from exobridge.core import proxies

        proxy = proxies.proxy_for(url)
        return proxies.display(proxy) if proxy else None
    except Exception:  # a broken setting was reported when the client was made
        return None


def _transport_failure(exc: BaseException, provider: ProviderConfig | None, waited: float | None) -> Failure:
    import httpx

    text = _first_line(exc)
    lowered = str(exc).lower()
    connect = provider.connect_timeout if provider is not None else None
    if isinstance(exc, httpx.ProxyError):
        return Failure(FailureKind.CONNECT, f"proxy unreachable ({text})")
    if isinstance(exc, httpx.ConnectTimeout):
        after = f" after {connect:g} s" if connect is not None else ""
        return Failure(FailureKind.CONNECT, f"connect timeout{after}")
    if isinstance(exc, httpx.ConnectError):
        if "refused" in lowered:
            return Failure(FailureKind.CONNECT, "connection refused")
        if any(s in lowered for s in DNS_WORDS):
            return Failure(FailureKind.CONNECT, "host not found (DNS)")
        if any(s in lowered for s in ("ssl", "tls", "certificate", "wrong version number")):
            return Failure(FailureKind.CONNECT, f"TLS handshake failed ({text})")
        if "timed out" in lowered:
            after = f" after {connect:g} s" if connect is not None else ""
            return Failure(FailureKind.CONNECT, f"connect timeout{after}")
        return Failure(FailureKind.CONNECT, f"cannot connect ({text})")
    if isinstance(exc, httpx.TimeoutException):
        if waited is None and provider is not None:
            waited = provider.first_token_timeout
        within = f" within {waited:g} s" if waited is not None else ""
        return Failure(FailureKind.FIRST_TOKEN_TIMEOUT, f"no reply{within}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return Failure(FailureKind.STREAM_BROKEN, f"connection reset ({text})")
    if isinstance(exc, httpx.DecodingError):
        return Failure(FailureKind.BAD_RESPONSE, f"undecodable body ({text})")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return Failure(FailureKind.CONNECT, f"unsupported URL ({text})")
    if isinstance(exc, httpx.InvalidURL | ValueError | ImportError):
        return Failure(FailureKind.CONNECT, f"cannot connect ({text})")
    return Failure(FailureKind.CONNECT, f"{type(exc).__name__}: {text}")


DNS_WORDS = (
    "name or service not known",  # glibc EAI_NONAME
    "nodename nor servname",  # macOS / BSD
    "name resolution",  # "Temporary failure in name resolution" (EAI_AGAIN)
    "no address associated",  # EAI_NODATA
    "getaddrinfo",
)


def deadline_failure(seconds: float) -> Failure:
    return Failure(FailureKind.FIRST_TOKEN_TIMEOUT, f"no reply within {seconds:g} s")


# --- cutting sockets at a deadline ------------------------------------------------------------------------


def _socket_of(stream: Any) -> socket.socket | None:
    try:
        sock = stream.get_extra_info("socket")
    except Exception:
        return None
    return sock if isinstance(sock, socket.socket) else None


def shutdown(stream: Any) -> None:
    """Wake a reader blocked in recv() on this network stream (closing the fd alone does not)."""
    sock = _socket_of(stream) if stream is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def shutdown_response(response: httpx.Response) -> None:
    """Shut the response's socket down and close the response; safe from any thread, any number of times."""
    shutdown(response.extensions.get("network_stream"))
    with contextlib.suppress(Exception):
        response.close()


class _Deadlines:
    """One daemon thread that fires every pending Cutoff at its deadline (a thread per request cost more than
    the request under `serve`'s load). Cancelled entries are dropped when they come up."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the parent's timer thread may hold the lock at fork

    def _reset(self) -> None:
        self._heap: list[tuple[float, int, Cutoff]] = []
        self._wake = threading.Condition()
        self._count = 0
        self._thread: threading.Thread | None = None

    def add(self, cutoff: Cutoff) -> None:
        import heapq

        with self._wake:
            self._count += 1
            if self._count % 1024 == 0:  # most requests end long before their deadline: drop their entries
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (cutoff.deadline, self._count, cutoff))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="exobridge-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is cutoff:
                self._wake.notify()

    def _run(self) -> None:
        import heapq

        while True:
            with self._wake:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                cutoff = heapq.heappop(self._heap)[2]
            if not cutoff.cancelled:
                cutoff.expire()


_DEADLINES = _Deadlines()


class Cutoff:
    """Shuts sockets down at a wall-clock deadline. `watch(stream)` adds one; `expired` tells afterwards."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.cancelled = False
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        _DEADLINES.add(self)

    def watch(self, stream: Any) -> None:
        with self._lock:
            self._streams.append(stream)
            fired = self.expired
        if fired:
            shutdown(stream)

    def expire(self) -> None:
        """Cut every watched socket now (the deadline passed, or the caller gave up)."""
        with self._lock:
            self.expired = True
            streams = list(self._streams)
        for stream in streams:
            shutdown(stream)

    def cancel(self) -> None:
        """The request ended in time: nothing to cut (its entry leaves the shared timer's queue later)."""
        with self._lock:
            self.cancelled = True
            self._streams.clear()

    def __enter__(self) -> Cutoff:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class PooledStreams:
    """The network streams a keep-alive client opened, so that a deadline can cut a connection the pool
    reuses (httpcore's trace shows only new connections). Such a client sends one request at a time: every
    stream here is idle or that request's, and cutting an idle one only makes the pool open a new one."""

    def __init__(self) -> None:
        self._streams: list[Any] = []
        self._lock = threading.Lock()

    def add(self, stream: Any) -> None:
        with self._lock:
            self._streams = [*self._open(), stream]

    def current(self) -> list[Any]:
        with self._lock:
            self._streams = self._open()
            return list(self._streams)

    def _open(self) -> list[Any]:
        """The streams whose socket is not closed yet (the pool drops closed connections by itself)."""
        return [s for s in self._streams if (sock := _socket_of(s)) is not None and sock.fileno() != -1]


_POOLED: weakref.WeakKeyDictionary[Any, PooledStreams] = weakref.WeakKeyDictionary()


def _tracer(cutoff: Cutoff | None, pooled: PooledStreams | None) -> Any:
    """An httpcore `trace` extension that hands each new connection's stream to the cutoff (and records it for
    a keep-alive client)."""

    def trace(event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            if stream is not None:
                if pooled is not None:
                    pooled.add(stream)
                if cutoff is not None:
                    cutoff.watch(stream)

    return trace


def send(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    provider: ProviderConfig | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
    deadline: float | None = None,
) -> httpx.Response:
    """Send a request; return the streaming response once its headers are in. Never follows redirects.

    With `deadline` (monotonic seconds), the wait for the status line and headers ends then, whatever
    trickles in (DNS included): `Failure(FIRST_TOKEN_TIMEOUT, "no reply within N s")`. Transport errors
    become Failures through `transport_failure`.
    """
    import httpx

    try:
        extensions: dict[str, Any] = {}
        cutoff = Cutoff(deadline) if deadline is not None else None
        pooled = _pooled(http)
        if cutoff is not None or pooled is not None:
            extensions["trace"] = _tracer(cutoff, pooled)
        if cutoff is not None and pooled is not None:
            for stream in pooled.current():  # the connection this request may reuse is one of them
                cutoff.watch(stream)
        request = http.build_request(
            method,
            url,
            json=json_body,
            headers=dict(headers or {}),
            timeout=timeout if timeout is not None else _default_timeout(provider),
            extensions=extensions,
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        raise transport_failure(exc, provider) from None
    waited = (deadline - time.monotonic()) if deadline is not None else None
    if cutoff is None:
        try:
            return http.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            read = timeout.read if isinstance(timeout, httpx.Timeout) else None
            raise transport_failure(exc, provider, waited=read, url=url) from None
    return _send_by(http, request, cutoff, provider, waited or 0.0, url)


def _send_by(
    http: httpx.Client,
    request: httpx.Request,
    cutoff: Cutoff,
    provider: ProviderConfig | None,
    waited: float,
    url: str,
) -> httpx.Response:
    """Send on a helper thread so the caller's wait ends at the deadline even in DNS or a header drip."""
    import httpx

    done = threading.Event()
    outcome: dict[str, Any] = {}
    abandoned = threading.Event()

    def work() -> None:
        try:
            response = http.send(request, stream=True, follow_redirects=False)
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc
        else:
            outcome["response"] = response
            if abandoned.is_set():
                shutdown_response(response)
        done.set()

    from exobridge.core import parallel

    parallel.WORKERS.submit(work)
    try:
        finished = done.wait(max(cutoff.deadline - time.monotonic(), 0.0))
    except BaseException:  # Ctrl-C: drop the request at once
        abandoned.set()
        cutoff.expire()
        raise
    if not finished:
        abandoned.set()
        cutoff.expire()
        if "response" in outcome:
            shutdown_response(outcome["response"])
        cutoff.cancel()
        raise deadline_failure(_whole(waited, provider))
    cutoff.cancel()
    if "error" in outcome:
        exc = outcome["error"]
        if cutoff.expired or isinstance(exc, httpx.TimeoutException):
            if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError) and not cutoff.expired:
                raise transport_failure(exc, provider, url=url) from None
            raise deadline_failure(_whole(waited, provider)) from None
        if isinstance(exc, httpx.HTTPError):
            raise transport_failure(exc, provider, url=url) from None
        raise exc
    return outcome["response"]


def _whole(waited: float, provider: ProviderConfig | None) -> float:
    """The deadline's length as configured (rounded), for the message."""
    if provider is not None and abs(provider.first_token_timeout - waited) < 1.0:
        return provider.first_token_timeout
    return round(waited, 1)


# --- reading bodies --------------------------------------------------------------------------------------


DECODE_STEP = 64 * KiB  # the most one decompression step may produce: a bomb cannot spike memory


def iter_decoded(response: httpx.Response, cap: int | None = None) -> Iterator[bytes]:
    """The body, decompressed here in steps of at most DECODE_STEP bytes (`iter_raw` + zlib with max_length:
    httpx's own decoders unpack a whole network read at once, so 64 KiB of gzip can become 64 MiB in one go).

    identity, gzip and deflate are read (clients only offer those); any other Content-Encoding is a
    `Failure(BAD_RESPONSE)`, as is more than `cap` decoded bytes.
    """
    import zlib

    encodings = [e.strip().lower() for e in response.headers.get("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "identity"]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "x-gzip", "deflate")):
        raise Failure(
            FailureKind.BAD_RESPONSE, f"unsupported Content-Encoding {', '.join(encodings)!r}", response.status_code
        )
    total = 0

    def count(data: bytes) -> bytes:
        nonlocal total
        total += len(data)
        if cap is not None and total > cap:
            raise Failure(FailureKind.BAD_RESPONSE, f"reply larger than {_size(cap)} (cap)", response.status_code)
        return data

    if not encodings:
        for raw in response.iter_raw():
            if raw:
                yield count(raw)
        return
    gzip_wrapped = encodings[0] in ("gzip", "x-gzip")
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip_wrapped else zlib.MAX_WBITS)
    first = True
    try:
        for raw in response.iter_raw():
            if first and not gzip_wrapped and raw:
                first = False
                try:  # "deflate" is zlib-wrapped by the RFC, raw deflate by some servers
                    probe = zlib.decompressobj(zlib.MAX_WBITS)
                    probe.decompress(raw[:2])
                except zlib.error:
                    decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            data = decoder.decompress(raw, DECODE_STEP)
            while True:
                if data:
                    yield count(data)
                if not decoder.unconsumed_tail:
                    break
                data = decoder.decompress(decoder.unconsumed_tail, DECODE_STEP)
        tail = decoder.flush()
        if tail:
            yield count(tail)
    except zlib.error as exc:
        raise Failure(FailureKind.BAD_RESPONSE, f"undecodable body ({exc})", response.status_code) from None


def _size(n: int) -> str:
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} bytes"


def read_body(
    response: httpx.Response,
    *,
    cap: int,
    deadline: float | None,
    provider: ProviderConfig | None = None,
    truncate: bool = False,
) -> bytes:
    """The whole (decoded) body, within `cap` bytes and by `deadline` (monotonic seconds; None: no bound).

    Past the cap: `Failure(BAD_RESPONSE)`, or with `truncate=True` the first `cap` bytes (for error bodies).
    At the deadline: `Failure(FIRST_TOKEN_TIMEOUT)`. Transport errors: `transport_failure`. Closes the
    response in every case.
    """
    import httpx

    parts: list[bytes] = []
    total = 0
    cutoff = Cutoff(deadline) if deadline is not None else None
    if cutoff is not None:
        cutoff.watch(response.extensions.get("network_stream"))
    started = time.monotonic()
    try:
        for chunk in iter_decoded(response, None if truncate else cap):
            if cutoff is not None and time.monotonic() >= cutoff.deadline:
                raise deadline_failure(_whole(cutoff.deadline - started, provider))
            if total + len(chunk) > cap:
                if truncate:
                    parts.append(chunk[: cap - total])
                    break
                raise Failure(FailureKind.BAD_RESPONSE, f"reply larger than {_size(cap)} (cap)", response.status_code)
            parts.append(chunk)
            total += len(chunk)
    except httpx.HTTPError as exc:
        if cutoff is not None and cutoff.expired:
            raise deadline_failure(_whole(cutoff.deadline - started, provider)) from None
        if truncate and not isinstance(exc, httpx.TimeoutException):
            return b"".join(parts)  # an error body cut short still says something
        raise transport_failure(exc, provider) from None
    finally:
        if cutoff is not None:
            cutoff.cancel()
        if cutoff is not None and cutoff.expired:
            shutdown_response(response)
        else:
            response.close()
    return b"".join(parts)


def get_json(
    http: httpx.Client,
    url: str,
    *,
    provider: ProviderConfig | None = None,
    headers: Mapping[str, str] | None = None,
    deadline_s: float = PROBE_DEADLINE,
    cap: int = JSON_CAP,
    timeout: httpx.Timeout | None = None,
) -> tuple[int, Any, bytes]:
    """GET `url` within `deadline_s` seconds (wall clock, headers and body) and at most `cap` body bytes.

    Returns `(status, data, body)`: `data` is the parsed JSON or None when the body is not JSON. Raises
    `Failure` for transport trouble (CONNECT, STREAM_BROKEN), at the deadline (FIRST_TOKEN_TIMEOUT) and past
    the cap (BAD_RESPONSE). A non-2xx status is returned, not raised: probes read error bodies too (capped at
    `ERROR_BODY_CAP`, truncated).
    """
    deadline = time.monotonic() + deadline_s
    if timeout is None and provider is not None:
        timeout = timeout_for(provider, read=deadline_s)
    response = send(http, "GET", url, provider=provider, headers=headers, timeout=timeout, deadline=deadline)
    ok = response.status_code < 300
    body = read_body(response, cap=cap if ok else ERROR_BODY_CAP, deadline=deadline, provider=provider, truncate=not ok)
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
    return response.status_code, data, body


def raise_for_status(
    response: httpx.Response, provider: ProviderConfig | None = None, *, deadline: float | None
) -> None:
    """Nothing for a 2xx; else a classified `Failure` from the error body (first `ERROR_BODY_CAP` bytes, read
    by `deadline`). Redirects are never followed: a 3xx is a BAD_RESPONSE naming where it pointed."""
    if response.status_code < 300:
        return
    from exobridge.core.failover import classify_http, parse_error_body  # only a failed request needs it

    try:
        body = read_body(response, cap=ERROR_BODY_CAP, deadline=deadline, provider=provider, truncate=True)
    except Failure as failure:
        if failure.kind is not FailureKind.FIRST_TOKEN_TIMEOUT:
            raise
        body = b""  # the status is known: a dripping error body still fails over as that status
    if 300 <= response.status_code < 400:
        location = response.headers.get("location", "?")
        if len(location) > 200:
            location = location[:199] + "…"
        raise Failure(
            FailureKind.BAD_RESPONSE,
            f"HTTP {response.status_code} redirect to {location} (not followed)",
            response.status_code,
        )
    error = parse_error_body(body, response.headers.get("content-type", ""))
    raise classify_http(response.status_code, error, response.headers.get("retry-after"))
