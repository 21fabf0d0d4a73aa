"""The dashboard's files and endpoints in-process (no browser): security headers on every file, the page
loads without the client key while the data does not, nothing inline or from another origin, provider text
only ever inserted as text, live cooldowns on a cached status, and nothing of it outside `serve`.

What only a browser shows (rendering, streaming, scripts that do not run) is in test_dashboard_browser.py.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from exobridge.serve import dashboard
from tests.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]
CLIENT_KEY = "exb-dashboard-unit-key-0123456789"


def dashboard_file(name: str) -> str:
    return resources.files("exobridge.data").joinpath("dashboard", name).read_text(encoding="utf-8")


@pytest.fixture
def upstream() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.route("GET", "/v1/models")(lambda ex: ex.reply(200, {"object": "list", "data": [{"id": "cloud-1"}]}))
    yield server
    server.close()


def make_client(isolated: Path, upstream: LoopbackServer, key: str | None, extra: str = "") -> Any:
    from starlette.testclient import TestClient

    from exobridge.serve.app import create_app
    from exobridge.serve.options import ServeOptions
    from exobridge.serve.server import build_context

    (isolated / "config.toml").write_text(
        textwrap.dedent(
            f"""
            [providers.exo]
            enabled = false
            [providers.openrouter]
            enabled = false
            [providers.huggingface]
            enabled = false
            [providers.backup]
            kind = "openai"
            url = "{upstream.url}/v1"
            """
        )
        + textwrap.dedent(extra),
        encoding="utf-8",
    )
    ctx = build_context(ServeOptions(), key, io.StringIO())
    return TestClient(create_app(ctx), base_url="http://127.0.0.1"), ctx


# --- the files ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(dashboard.FILES))
def test_every_file_is_served_without_the_key_with_strict_security_headers(isolated, upstream, path) -> None:
    client, _ = make_client(isolated, upstream, CLIENT_KEY)
    response = client.get(path)
    assert response.status_code == 200 and response.content
    assert response.headers["content-type"] == dashboard.FILES[path][1]
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in csp and "*" not in csp and "data:" not in csp and "http" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in response.headers


def test_the_data_needs_the_key_and_the_page_names_what_it_can_show(isolated, upstream) -> None:
    client, _ = make_client(isolated, upstream, CLIENT_KEY)
    for path in ("/v1/exobridge/dashboard", "/v1/exobridge/status", "/v1/models"):
        assert client.get(path).status_code == 401, path
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    features = client.get("/v1/exobridge/dashboard", headers=auth).json()["features"]
    assert set(features) == {"history", "spend", "budgets", "exo_load"}
    assert client.get("/dashboard/nothing-here.js").status_code == 401  # only the listed files are public
    assert client.get("/dashboard/nothing-here.js", headers=auth).status_code == 404


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def test_the_page_has_no_inline_script_or_style_and_nothing_from_another_origin() -> None:
    page = _Page()
    page.feed(dashboard_file("index.html"))
    assert not page.script_text, "inline script"
    for tag, attrs in page.tags:
        assert tag != "style", "inline <style>"
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not value or value.startswith(("/", "#")), f"<{tag} {name}={value}>: another origin or a path"
    for name in ("index.html", "app.js", "app.css", "icon.svg"):
        text = dashboard_file(name).replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?:|//[\w.-]+\.\w+/|@import|url\(", text), f"{name} reaches another origin"


def test_provider_text_is_only_ever_inserted_as_text() -> None:
    script = dashboard_file("app.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "srcdoc"):
        assert sink not in script, f"app.js uses {sink}"
    assert "localStorage" not in script and "document.cookie" not in script  # the key: session storage only
    assert "setAttribute" not in script  # no attribute can turn into a URL or a handler


def test_the_dashboard_files_are_package_data() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"dashboard/*"' in pyproject
    shipped = {p.name for p in resources.files("exobridge.data").joinpath("dashboard").iterdir()}
    assert {name for name, _ in dashboard.FILES.values()} <= shipped


# --- the status the page polls ---------------------------------------------------------------------------------------


def test_a_cooldown_learned_after_the_probe_shows_at_once_without_probing_again(isolated, upstream) -> None:
    from exobridge.core.errors import Failure, FailureKind

    client, ctx = make_client(isolated, upstream, None)
    first = client.get("/v1/exobridge/status")
    assert first.status_code == 200 and int(first.headers["age"]) == 0
    node = next(n for n in first.json()["nodes"] if n["provider"] == "backup")
    assert node["cooldown"] is None
    probes = len(upstream.requests)

    provider = ctx.live.get().providers["backup"]
    ctx.state.failed(provider, provider.urls[0], Failure(FailureKind.CONNECT, "connection refused"))
    second = client.get("/v1/exobridge/status")
    node = next(n for n in second.json()["nodes"] if n["provider"] == "backup")
    assert node["cooldown_left"] > 0 and "connect failure" in node["cooldown"]
    assert node["last_failure"] and "connection refused" in node["last_failure"]
    assert len(upstream.requests) == probes  # the probe was not repeated

    ctx.state.succeeded(provider, provider.urls[0])  # serve learned the node answers again
    third = client.get("/v1/exobridge/status")
    node = next(n for n in third.json()["nodes"] if n["provider"] == "backup")
    assert node["cooldown"] is None and node["cooldown_left"] is None
    assert len(upstream.requests) == probes


# --- nothing of it outside serve ------------------------------------------------------------------------------------


# `--help` and `chat --help` load nothing of exobridge.serve (the dashboard included): one fresh interpreter per
# command line holds it, with the other start-up promises, in tests/test_project.py.


def test_only_serve_imports_the_dashboard() -> None:
    for path in sorted((ROOT / "exobridge").rglob("*.py")):
        if path.is_relative_to(ROOT / "exobridge" / "serve"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            assert not [n for n in names if n.startswith("exobridge.serve.dashboard")], path


# --- web pages of other sites ---------------------------------------------------------------------------------------


def test_a_page_of_another_site_cannot_use_serve_through_the_browser(isolated, upstream) -> None:
    client, ctx = make_client(isolated, upstream, None)
    body = {"model": "backup:cloud-1", "messages": [{"role": "user", "content": "hi"}]}
    elsewhere = client.post("/v1/chat/completions", json=body, headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "forbidden_origin"
    rebound = client.get("/v1/exobridge/status", headers={"Host": "evil.example:52480"})  # DNS rebinding
    assert rebound.status_code == 403 and "evil.example" in rebound.json()["error"]["message"]
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 403
    assert not [r for r in upstream.requests if r.method == "POST"]  # nothing reached a provider
    for host in ("127.0.0.1:52480", "localhost:52480", "[::1]:52480", "127.0.0.2"):
        same = client.get("/v1/exobridge/dashboard", headers={"Host": host, "Origin": f"http://{host}"})
        assert same.status_code == 200, host
    assert client.get("/health", headers={"Origin": "null"}).status_code == 403  # a sandboxed page or a file
    proxied = {"Host": "127.0.0.1:52480", "X-Forwarded-Host": "box.example", "Origin": "https://box.example"}
    assert client.get("/v1/exobridge/dashboard", headers=proxied).status_code == 200  # the page via a proxy
    ctx.loopback = False  # bound elsewhere (with a client key): any Host name, still no foreign Origin
    assert client.get("/health", headers={"Host": "box.lan:52480"}).status_code == 200
    foreign = client.get("/health", headers={"Host": "box.lan:52480", "Origin": "http://evil.example"})
    assert foreign.status_code == 403


# --- history and spend ----------------------------------------------------------------------------------------------


def test_history_endpoints_say_when_there_is_no_history(isolated, upstream) -> None:
    client, _ = make_client(isolated, upstream, None)
    for path in ("/v1/exobridge/history", "/v1/exobridge/history/1", "/v1/exobridge/spend"):
        answer = client.get(path).json()
        assert answer["available"] is False and "no history yet" in answer["reason"], path
    assert client.get("/v1/exobridge/history?limit=lots").status_code == 400


def test_recent_requests_spend_budgets_and_savings_from_the_history(isolated, upstream) -> None:
    history = pytest.importorskip("exobridge.core.history")
    spend = pytest.importorskip("exobridge.core.spend")
    extra = """
        [models.m]
        backup = "m"
        openrouter = "meta/llama-3-8b"

        [budget]
        daily_usd = 1.0

        [budget.backup]
        monthly_usd = 0.5
        """
    client, _ = make_client(isolated, upstream, None, extra)
    spend.store_prices("openrouter", {"meta/llama-3-8b": {"prompt": 0.001, "completion": 0.002}})
    chain = [{"provider": "exo", "outcome": "failed", "reason": "connection refused"}, {"provider": "backup"}]
    with history.Store() as store:
        store.add(
            history.Entry(
                "c1",
                "one",
                "1",
                "complete",
                provider="backup",
                attempts=chain,
                cost=0.25,
                cost_source="reported",
                prompt_tokens=3,
                completion_tokens=4,
            )
        )
        store.add(
            history.Entry(
                "c1",
                "two",
                "2",
                "complete",
                provider="exo",
                requested_model="m",
                cost=0.0,
                cost_source="free",
                prompt_tokens=100,
                completion_tokens=50,
            )
        )
        store.add(history.Entry("c2", "three", "3", "complete", provider="backup"))  # cost unknown
        store.add(history.Entry("c3", "four", "", "failed", provider="backup", error="HTTP 500"))

    recent = client.get("/v1/exobridge/history?limit=2").json()
    assert recent["available"] and [r["outcome"] for r in recent["requests"]] == ["failed", "complete"]
    recent = client.get("/v1/exobridge/history?limit=3").json()
    assert "prompt" not in recent["requests"][0] and "reply" not in recent["requests"][0]  # the list is light
    first = client.get(f"/v1/exobridge/history/{recent['requests'][2]['id'] - 1}").json()
    assert first["prompt"] == "one" and first["attempts"] == chain
    assert client.get("/v1/exobridge/history/999").status_code == 404

    money = client.get("/v1/exobridge/spend?days=7").json()
    assert money["days"] == 7 and len(money["per_day"]) == 1
    assert money["per_day"][0]["cost"] == pytest.approx(0.25) and money["per_day"][0]["requests"] == 4
    by_provider = {p["provider"]: p for p in money["per_provider"]}
    assert by_provider["backup"]["cost"] == pytest.approx(0.25) and by_provider["backup"]["unknown"] == 1
    assert money["saved"]["usd"] == pytest.approx(100 * 0.001 + 50 * 0.002)
    assert money["saved"]["reference"] == "openrouter" and money["saved"]["price_date"]
    budgets = {(b["scope"], b["period"]): b for b in money["budgets"]}
    assert budgets[("overall", "daily")]["left"] == pytest.approx(0.75)
    assert budgets[("backup", "monthly")]["left"] == pytest.approx(0.25)


# --- loading a model onto Exo ---------------------------------------------------------------------------------------


@pytest.fixture
def exo_cluster(monkeypatch) -> Iterator[Any]:
    exo_loading = pytest.importorskip("exobridge.core.exo_loading")
    from tests.exo_sim import CurrentExo

    monkeypatch.setattr(exo_loading, "FIRST_POLL", 0.005)  # progress read every few ms in-process
    monkeypatch.setattr(exo_loading, "POLL", 0.01)
    server = LoopbackServer()
    yield CurrentExo(server)
    server.close()


def load_events(client: Any, body: Any) -> tuple[Any, list[Any]]:
    import json

    with client.stream("POST", "/v1/exobridge/exo/load", json=body) as response:
        text = "".join(response.iter_text())
    if response.headers["content-type"].startswith("application/json"):
        return response, [json.loads(text)]
    payloads = [line[5:].strip() for line in text.split("\n") if line.startswith("data:")]
    assert payloads[-1] == "[DONE]" or "error" in payloads[-1], payloads
    return response, [json.loads(p) for p in payloads if p != "[DONE]"]


def test_loading_a_model_streams_the_same_progress_as_models_load(isolated, upstream, exo_cluster) -> None:
    from tests.exo_sim import V1_ID

    extra = f"""
        [providers.studio]
        kind = "exo"
        url = "{exo_cluster.url}"
        """
    client, _ = make_client(isolated, upstream, None, extra)
    assert client.get("/v1/exobridge/dashboard").json()["features"]["exo_load"] is True
    response, events = load_events(client, {"model": f"studio:{V1_ID}"})
    assert response.status_code == 200
    phases = [e["phase"] for e in events]
    assert phases[0] == "checking" and phases[-1] == "ready", phases
    assert "downloading" in phases and "loading" in phases
    assert all(e["provider"] == "studio" for e in events)
    downloading = [e for e in events if e["phase"] == "downloading"]
    assert any(node["downloaded_bytes"] > 0 for e in downloading for node in e["nodes"])  # bytes for the bar
    assert exo_cluster.placed and len(exo_cluster.place_bodies) == 1


def test_a_load_that_cannot_start_is_one_error(isolated, upstream, exo_cluster) -> None:
    client, _ = make_client(isolated, upstream, None)  # no Exo provider configured
    response, [body] = load_events(client, {"model": "llama-3.2-3b"})
    assert response.status_code == 400 and "the Exo provider exo is disabled" in body["error"]["message"]
    for bad in ({"model": ""}, {"model": "m", "timeout": -1}, ["m"]):
        assert client.post("/v1/exobridge/exo/load", json=bad).status_code == 400, bad
    assert client.get("/v1/exobridge/exo/load").status_code == 405


def test_an_open_dashboard_does_not_fill_the_log(isolated, upstream) -> None:
    client, ctx = make_client(isolated, upstream, CLIENT_KEY)
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    for path in [*dashboard.FILES, "/v1/exobridge/status", "/v1/exobridge/history", "/v1/exobridge/spend"]:
        assert client.get(path, headers=auth).status_code == 200, path
    assert client.get("/v1/models", headers=auth).status_code == 200
    assert client.get("/v1/exobridge/status").status_code == 401  # a failure is always logged
    log = ctx.log.stream.getvalue()
    assert "GET /v1/models 200" in log and "GET /v1/exobridge/status 401" in log
    assert "GET / " not in log and "app.js" not in log and "status 200" not in log and "/spend" not in log
