"""The benchmark of issue 10: requests through `exobridge serve` against the same upstream asked directly.

    python3 bench/serve.py              # 16 concurrent clients, 5 s per phase
    python3 bench/serve.py --seconds 2  # quicker
    python3 bench/serve.py --client httpx   # the clients are httpx.AsyncClient (as the openai SDK)

One run measures, with K concurrent clients (keep-alive connections, a minimal HTTP/1.1 client on asyncio so
the client costs little next to the servers): requests/s and latency through serve and directly against the
upstream, non-streaming (latency = the whole reply) and streaming (latency = time to the first content chunk).
Then 200 streams held open through serve at once, counting errors, with serve's resident memory at the peak.
When LiteLLM's proxy is installed (`litellm` on PATH), it is measured beside serve the same way. A bare
passthrough proxy on serve's own stack (uvicorn + Starlette + httpx.AsyncClient, nothing of exobridge) is
always measured too: the ceiling any proxy on this stack reaches on this machine, as a reference row.

The upstream is the test suite's loopback server (tests/loopback.py) in a process of its own, answering at
once. serve runs as the installed `exobridge serve`, with a private HOME, config and cache. Stdlib only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench-model"
WORDS = ["Hello", " from", " the", " loopback", " server."]
USAGE = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
HOLD_SECONDS = 2.0  # how long each of the 200 held streams stays open upstream

TARGETS = {
    "throughput_ratio": 0.7,  # serve / direct, at 16 concurrent clients
    "added_p50_ms": 5.0,
    "added_p99_ms": 25.0,
    "held_streams": 200,
    "rss_mib": 150.0,
}


# --- the upstream (a child process) ----------------------------------------------------------------------


def upstream_main(port_out: multiprocessing.connection.Connection) -> None:  # type: ignore[name-defined]
    sys.path.insert(0, str(ROOT))
    import threading

    from tests.loopback import LoopbackServer, chunk, completion

    server = LoopbackServer()

    def chat(ex):
        body = ex.request.json()
        if not body.get("stream"):
            ex.reply(200, completion("".join(WORDS), model=MODEL, usage=USAGE))
            return
        ex.start_stream()
        ex.event(chunk(model=MODEL, role=True))
        for index, word in enumerate(WORDS):
            ex.event(chunk(word, model=MODEL))
            if index == 0 and body.get("hold"):
                time.sleep(HOLD_SECONDS)  # the upstream's pace, not a synchronisation
        ex.event(chunk(model=MODEL, finish="stop", usage=USAGE))
        ex.event("[DONE]")
        ex.end()

    server.route("POST", "/v1/chat/completions")(chat)
    port_out.send(server.url)
    threading.Event().wait()


# --- a minimal HTTP/1.1 client ------------------------------------------------------------------------------


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, path: str, body: bytes, headers: str = "") -> tuple[int, float, bytes]:
        """POST; returns the status, seconds to the first content (the whole reply when not streamed), body."""
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        started = time.perf_counter()
        self.writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{headers}\r\n"
            ).encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        first: float | None = None
        parts: list[bytes] = []
        if "content-length" in fields:
            parts.append(await self.reader.readexactly(int(fields["content-length"])))
        elif fields.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                if first is None and b'"content":"' in data and b'"content":""' not in data:
                    first = time.perf_counter() - started
                parts.append(data[:-2])
        else:
            parts.append(await self.reader.read())
        elapsed = time.perf_counter() - started
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, first if first is not None else elapsed, b"".join(parts)


@dataclass
class Phase:
    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def count(self, status: int | None, latency: float = 0.0) -> None:
        """One request in the measuring window: a latency when it answered 200, else an error (None: it broke)."""
        if status is not None:
            self.requests += 1
        if status == 200:
            self.latencies.append(latency)
        else:
            self.errors += 1

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def chat_body(stream: bool, **extra: object) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **extra}
    return json.dumps(body).encode()


async def load(name: str, url: str, path: str, stream: bool, clients: int, seconds: float, warmup: float) -> Phase:
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
    body = chat_body(stream)
    phase = Phase(name)
    measuring = False
    stop_at = time.perf_counter() + warmup + seconds

    async def client() -> None:
        conn = Connection(host, int(port))
        try:
            while time.perf_counter() < stop_at:
                try:
                    status, latency, _ = await conn.request(path, body)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    await conn.close()
                    status, latency = None, 0.0
                if measuring:
                    phase.count(status, latency)
        finally:
            await conn.close()

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(warmup)
    measuring = True
    begun = time.perf_counter()
    await asyncio.gather(*tasks)
    phase.seconds = time.perf_counter() - begun
    return phase


async def load_httpx(
    name: str, url: str, path: str, stream: bool, clients: int, seconds: float, warmup: float
) -> Phase:
    """The same load with httpx.AsyncClient as the client (what the openai SDK uses), for comparison."""
    import httpx

    body = chat_body(stream)
    phase = Phase(name)
    measuring = False
    stop_at = time.perf_counter() + warmup + seconds

    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=clients), timeout=30) as http:

        async def one() -> tuple[int, float]:
            started = time.perf_counter()
            if not stream:
                response = await http.post(path, content=body, headers={"content-type": "application/json"})
                return response.status_code, time.perf_counter() - started
            first = None
            async with http.stream("POST", path, content=body, headers={"content-type": "application/json"}) as r:
                async for line in r.aiter_lines():
                    if first is None and '"content":"' in line and '"content":""' not in line:
                        first = time.perf_counter() - started
                return r.status_code, first if first is not None else time.perf_counter() - started

        async def client() -> None:
            while time.perf_counter() < stop_at:
                try:
                    status, latency = await one()
                except httpx.HTTPError:
                    status, latency = None, 0.0
                if measuring:
                    phase.count(status, latency)

        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        await asyncio.sleep(warmup)
        measuring = True
        begun = time.perf_counter()
        await asyncio.gather(*tasks)
        phase.seconds = time.perf_counter() - begun
    return phase


async def held_streams(url: str, count: int, pid: int | None) -> tuple[int, int, float | None]:
    """`count` streams open at once; returns (completed, errors, peak RSS MiB of `pid`)."""
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
    body = chat_body(True, hold=True)
    peak: float | None = None
    done = errors = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set() and pid is not None:
            rss = rss_mib(pid)
            peak = rss if peak is None or (rss is not None and rss > peak) else peak
            await asyncio.sleep(0.05)

    async def one() -> None:
        nonlocal done, errors
        conn = Connection(host, int(port))
        try:
            status, _, data = await conn.request("/v1/chat/completions", body)
            if status == 200 and b"[DONE]" in data and b'"error"' not in data:
                done += 1
            else:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            await conn.close()

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(one() for _ in range(count)))
    stop.set()
    await sampler
    return done, errors, peak


def rss_mib(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(found.group(1)) / 1024 if found else None


# --- the servers under test ----------------------------------------------------------------------------------


def start_serve(upstream: str, home: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            default_model = "{MODEL}"
            [providers.exo]
            enabled = false
            [providers.openrouter]
            enabled = false
            [providers.huggingface]
            enabled = false
            [providers.upstream]
            kind = "openai"
            url = "{upstream}/v1"
            priority = 0
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("EXOBRIDGE_")}
    env.update(
        HOME=str(home),
        EXOBRIDGE_CONFIG=str(config),
        EXOBRIDGE_KEYS_FILE=str(home / "keys.toml"),
        EXOBRIDGE_CACHE_DIR=str(home / "cache"),
        EXOBRIDGE_DATA_DIR=str(home / "data"),
    )
    exe = shutil.which("exobridge") or str(Path(sys.executable).parent / "exobridge")
    proc = subprocess.Popen([exe, "serve", "--port", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    found = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
    if not found:
        raise SystemExit(f"serve did not start: {line}")
    # Keep reading its access log so the pipe never fills (and the log's cost is part of the measurement).
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    return proc, found.group(1)


# The same stack with nothing of exobridge in it: uvicorn + Starlette + one shared httpx.AsyncClient (keep-alive)
# passing the request body through and the reply back. What any proxy on this stack can reach on this machine,
# measured in the same run (a reference row, not a target).
PASSTHROUGH_PROXY = """\
import sys
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

upstream = httpx.AsyncClient(base_url=sys.argv[2], limits=httpx.Limits(max_connections=200))


async def chat(request):
    body = await request.body()
    sent = upstream.build_request(
        "POST", "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    reply = await upstream.send(sent, stream=True)
    if not reply.headers.get("content-type", "").startswith("text/event-stream"):
        data = await reply.aread()
        await reply.aclose()
        return Response(data, status_code=reply.status_code, media_type="application/json")

    async def relay():
        try:
            async for piece in reply.aiter_bytes():
                yield piece
        finally:
            await reply.aclose()

    return StreamingResponse(relay(), media_type="text/event-stream")


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start_passthrough(upstream: str, home: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = home / "passthrough.py"
    script.write_text(PASSTHROUGH_PROXY)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), upstream], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)  # polling a child's start-up, not synchronising a test
    proc.kill()
    return None


def start_litellm(upstream: str, home: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    exe = shutil.which("litellm")
    if exe is None:
        return None
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = home / "litellm.yaml"
    config.write_text(
        f"model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n"
        f"      api_base: {upstream}/v1\n      api_key: none\n"
    )
    proc = subprocess.Popen(
        [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    import urllib.request

    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health/liveliness", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    return None


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- the run ---------------------------------------------------------------------------------------------------


def row(label: str, phase: Phase, direct: Phase | None = None) -> str:
    text = f"{label:<34} {phase.rate:8.0f} req/s   p50 {phase.pct(0.5):7.2f} ms   p99 {phase.pct(0.99):7.2f} ms"
    if phase.errors:
        text += f"   errors {phase.errors}"
    if direct is not None:
        text += (
            f"   ratio {phase.rate / direct.rate:4.2f}   added p50 {phase.pct(0.5) - direct.pct(0.5):+6.2f} ms"
            f"   p99 {phase.pct(0.99) - direct.pct(0.99):+6.2f} ms"
        )
    return text


async def measure(args: argparse.Namespace) -> dict[str, object]:
    receive, send = multiprocessing.Pipe(duplex=False)
    upstream_proc = multiprocessing.get_context("spawn").Process(target=upstream_main, args=(send,), daemon=True)
    upstream_proc.start()
    upstream = receive.recv()
    home = Path(tempfile.mkdtemp(prefix="exobridge-bench-serve-"))
    serve_proc, serve_url = start_serve(upstream, home / "serve", args.workers)
    litellm = start_litellm(upstream, home) if not args.no_litellm else None
    passthrough = start_passthrough(upstream, home)
    results: dict[str, object] = {"clients": args.clients, "seconds": args.seconds, "client": args.client}
    try:
        print(
            f"upstream {upstream} · serve {serve_url} · {args.clients} {args.client} clients · "
            f"{args.seconds:g} s per phase"
        )
        drive = load_httpx if args.client == "httpx" else load
        for stream in (False, True):
            kind = "stream (first content)" if stream else "whole reply"
            direct = await drive("direct", upstream, "/v1/chat/completions", stream, args.clients, args.seconds, 1)
            served = await drive("serve", serve_url, "/v1/chat/completions", stream, args.clients, args.seconds, 1)
            print(row(f"direct, {kind}", direct))
            print(row(f"exobridge serve, {kind}", served, direct))
            key = "stream" if stream else "whole"
            results[key] = {
                "direct_rps": round(direct.rate),
                "serve_rps": round(served.rate),
                "ratio": round(served.rate / direct.rate, 3),
                "added_p50_ms": round(served.pct(0.5) - direct.pct(0.5), 2),
                "added_p99_ms": round(served.pct(0.99) - direct.pct(0.99), 2),
                "errors": served.errors,
            }
            if passthrough is not None:
                bare = await drive(
                    "passthrough", passthrough[1], "/v1/chat/completions", stream, args.clients, args.seconds, 1
                )
                print(row(f"bare passthrough, same stack, {kind}", bare, direct))
                results[f"passthrough_{key}"] = {
                    "ratio": round(bare.rate / direct.rate, 3),
                    "added_p50_ms": round(bare.pct(0.5) - direct.pct(0.5), 2),
                }
            if litellm is not None:
                other = await drive(
                    "litellm", litellm[1], "/v1/chat/completions", stream, args.clients, args.seconds, 1
                )
                print(row(f"LiteLLM proxy, {kind}", other, direct))
                results[f"litellm_{key}"] = {"ratio": round(other.rate / direct.rate, 3)}
        if litellm is None:
            print("LiteLLM proxy: not installed (pip install 'litellm[proxy]' to compare), skipped")
        done, errors, peak = await held_streams(serve_url, TARGETS["held_streams"], serve_proc.pid)  # type: ignore[arg-type]
        print(
            f"{TARGETS['held_streams']} streams held open at once: {done} complete, {errors} errors, "
            f"serve RSS peak {peak:.0f} MiB"
            if peak is not None
            else "serve RSS unknown"
        )
        results["held"] = {"complete": done, "errors": errors, "rss_peak_mib": round(peak or 0, 1)}
    finally:
        stop(serve_proc)
        if passthrough is not None:
            stop(passthrough[0])
        if litellm is not None:
            stop(litellm[0])
        upstream_proc.terminate()
        shutil.rmtree(home, ignore_errors=True)
    return results


def verdict(results: dict[str, object]) -> list[str]:
    lines = []
    for key in ("whole", "stream"):
        r = results[key]
        assert isinstance(r, dict)
        lines.append(
            f"{key}: ratio {r['ratio']:.2f} (target ≥ {TARGETS['throughput_ratio']}) · added p50 "
            f"{r['added_p50_ms']:.2f} ms (≤ {TARGETS['added_p50_ms']:g}) · added p99 {r['added_p99_ms']:.2f} ms "
            f"(≤ {TARGETS['added_p99_ms']:g})"
        )
    held = results["held"]
    assert isinstance(held, dict)
    lines.append(
        f"held: {held['complete']}/{TARGETS['held_streams']} complete, {held['errors']} errors · RSS "
        f"{held['rss_peak_mib']} MiB (≤ {TARGETS['rss_mib']:g})"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: a minimal asyncio HTTP client (the servers' cost shows most); httpx: httpx.AsyncClient",
    )
    parser.add_argument("--workers", type=int, default=1, help="serve's --workers")
    parser.add_argument("--no-litellm", action="store_true", help="do not measure LiteLLM even when installed")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object at the end")
    args = parser.parse_args()
    results = asyncio.run(measure(args))
    print()
    for line in verdict(results):
        print(line)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
