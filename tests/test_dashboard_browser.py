"""The dashboard (`GET /` on `exobridge serve`) in a real headless Chromium, driven by Selenium.

One browser session for the module, against real `exobridge serve` processes on 127.0.0.1 with a loopback
config: Exo refuses connections, `backup` answers, `evil` sends HTML in its model ids and its error bodies.
Screenshots of each state go to $EXOBRIDGE_ARTIFACTS (or the test's temporary directory).

Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`); skipped with
that reason when they are missing.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import Exchange, LoopbackServer, closed_port, stream_words
from tests.serve_support import ServeProcess, pieces, serve_env

try:  # issue 12's simulated Exo cluster (loading models)
    from tests.exo_sim import V1_ID, CurrentExo
except ImportError:
    V1_ID, CurrentExo = "", None

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# One page walked through in order (opened by the first test; the history grows with the playground's requests):
# the tests of a module run on one xdist worker, in file order (`--dist loadscope` in pyproject.toml).
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")

PAYLOAD_MODEL = "<img src=x onerror=window.__pwnedModel=1>"
PAYLOAD_ERROR = "<img src=x onerror=window.__pwnedError=1>"
PAYLOAD_PLACED = "<img src=x onerror=window.__pwnedPlaced=1>"
PLACED = "mlx-community/Llama-3.2-1B-Instruct-4bit"
WAIT = 15  # seconds any one thing may take to appear in the page (a ceiling, never a sleep)
CLIENT_KEY = "exb-dashboard-test-key-0123456789"
BACKUP_KEY = "sk-7Qx2Lm9Vb4Nc8Rt1Zp6Wd3Ks5Hj0Fa9a1c"  # backup's own key: shown masked, never whole

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def dashboard_config(exo_url: str, studio: LoopbackServer, backup: LoopbackServer, evil: LoopbackServer) -> str:
    return f"""
        default_model = "m"

        [providers.exo]
        url = "{exo_url}"
        connect_timeout = 2

        [providers.studio]
        kind = "exo"
        url = "{studio.url}"
        priority = 1

        [providers.openrouter]
        enabled = false

        [providers.huggingface]
        enabled = false

        [providers.backup]
        kind = "openai"
        url = "{backup.url}/v1"
        priority = 2
        key_env = "EXB_BACKUP_KEY"

        [providers.evil]
        kind = "openai"
        url = "{evil.url}/v1"
        priority = 3

        [models.m]
        exo = "m"
        backup = "m"

        [budget.backup]
        daily_usd = 1.0
        """


def exo_v1_cluster(placed: tuple[str, ...] = (PLACED, PAYLOAD_PLACED)) -> LoopbackServer:
    """An Exo v1 node as the status probe sees it: two nodes, two placed models (one named with HTML)."""
    server = LoopbackServer()
    instances = {
        f"instance-{n}": {"MlxRingInstance": {"shardAssignments": {"modelId": model}}} for n, model in enumerate(placed)
    }
    state = {"topology": {"nodes": [{"nodeId": "a"}, {"nodeId": "b"}]}, "instances": instances}
    server.route("GET", "/node_id")(lambda ex: ex.reply(200, '"node-a"'))
    server.route("GET", "/state")(lambda ex: ex.reply(200, state))
    models = {"object": "list", "data": [{"id": model} for model in placed]}
    server.route("GET", "/v1/models")(lambda ex: ex.reply(200, models))
    return server


def evil_chat(ex: Exchange) -> None:
    ex.reply(400, {"error": {"message": f"bad model {PAYLOAD_ERROR}", "type": "invalid_request_error"}})


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("EXOBRIDGE_ARTIFACTS")
    path = Path(where) / "dashboard" if where else tmp_path_factory.mktemp("dashboard-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[LoopbackServer, LoopbackServer, LoopbackServer]]:
    backup, evil, studio = LoopbackServer(), LoopbackServer(), exo_v1_cluster()
    backup.route("GET", "/v1/models")(lambda ex: ex.reply(200, {"object": "list", "data": [{"id": "cloud-1"}]}))
    backup.route("POST", "/v1/chat/completions")(stream_words(["Hello ", "from ", "backup"]))
    evil.route("GET", "/v1/models")(lambda ex: ex.reply(200, {"object": "list", "data": [{"id": PAYLOAD_MODEL}]}))
    evil.route("POST", "/v1/chat/completions")(evil_chat)
    yield backup, evil, studio
    backup.close()
    evil.close()
    studio.close()


PAYLOAD_PROMPT = "<img src=x onerror=window.__pwnedHistory=1>"
PAYLOAD_TOOL = "<img src=x onerror=window.__pwnedTool=1>"
TOOL_ARGUMENTS = f'{{"q": "{PAYLOAD_TOOL}"}}'
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "where", "arguments": TOOL_ARGUMENTS}}


def seed_history(home: Path) -> bool:
    """Three recorded requests in serve's history database (False when this version has no history)."""
    try:
        from exobridge.core import history
    except ImportError:
        return False
    failover = [
        {"provider": "exo", "url": None, "model": "m", "outcome": "failed", "reason": "connection refused"},
        {"provider": "backup", "url": None, "model": "m", "outcome": "ok", "reason": None},
    ]
    entries = [
        history.Entry(
            "c1",
            "Hi",
            "Hello from backup",
            "complete",
            provider="backup",
            requested_model="m",
            served_model="m",
            attempts=failover,
            prompt_tokens=10,
            completion_tokens=20,
            cost=0.0123,
            cost_source="price list",
            latency_ms=420,
        ),
        history.Entry(
            "c2",
            PAYLOAD_PROMPT,
            "",
            "failed",
            provider=None,
            requested_model="evil:x",
            error=f"evil rejected the request: {PAYLOAD_ERROR}",
        ),
        history.Entry(
            "c3",
            "Local?",
            "Yes",
            "complete",
            provider="studio",
            requested_model="m",
            served_model=PLACED,
            prompt_tokens=5,
            completion_tokens=5,
            cost=0.0,
            cost_source="free",
            latency_ms=80,
            reply_parts={"tool_calls": [TOOL_CALL], "reasoning": "They ask where it runs."},
        ),
    ]
    (home / "data").mkdir(parents=True, exist_ok=True)
    with history.Store(home / "data" / history.FILE_NAME) as store:
        for entry in entries:
            store.add(entry)
    return True


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, upstreams) -> Iterator[ServeProcess]:
    backup, evil, studio = upstreams
    home = tmp_path_factory.mktemp("dashboard") / "home"
    process_history = seed_history(home)
    config = dashboard_config(f"http://127.0.0.1:{closed_port()}", studio, backup, evil)
    process = ServeProcess(serve_env(home, textwrap.dedent(config), EXB_BACKUP_KEY=BACKUP_KEY))
    process.has_history = process_history  # type: ignore[attr-defined]
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


# --- helpers ---------------------------------------------------------------------------------------------------------


def wait_for(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, message=what)


def text_of(driver: Any, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


# Sections are re-rendered at every status refresh: read (and click) them in one step, in the page.
PROVIDER_ROWS = """
return [...document.querySelectorAll("#providers-body tr")]
    .map(tr => [tr.querySelector("strong").textContent, tr.innerText]);
"""


def provider_rows(driver: Any) -> dict[str, str]:
    return dict(driver.execute_script(PROVIDER_ROWS))  # in the table's order


def request_rows(driver: Any) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#requests-body tr')].map(tr => tr.innerText)")


def send_message(driver: Any, model: str, text: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "model-picker")).select_by_value(model)
    box = driver.find_element("id", "chat-input")
    box.clear()
    box.send_keys(text)
    driver.find_element("id", "chat-send").click()


def turns(driver: Any) -> list[tuple[str, str]]:
    return [(li.get_attribute("class"), li.text) for li in driver.find_elements("css selector", "#transcript li")]


CLICK_LOAD = """
const item = [...document.querySelectorAll("#exo-nodes ul.loadable li")]
    .find(li => li.textContent.endsWith(arguments[0]));
if (!item) return false;
item.querySelector("button").click();
return true;
"""


def click_load(driver: Any, model: str) -> bool:
    """Click the model's Load button (in one step: the section is re-rendered at every status refresh)."""
    return driver.execute_script(CLICK_LOAD, model)


def open_dashboard(driver: Any, url: str) -> None:
    driver.get(url + "/")
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "yes", "the page to start")


# --- tests ---------------------------------------------------------------------------------------------------------


def test_the_page_loads_without_console_errors_and_lists_the_providers(browser, serve, artifacts) -> None:
    assert f"dashboard {serve.url}/" in serve.text()  # the start-up line says where the page is
    open_dashboard(browser, serve.url)
    wait_for(browser, lambda d: len(provider_rows(d)) == 4, "a row per configured provider")
    rows = provider_rows(browser)
    assert list(rows) == ["exo", "studio", "backup", "evil"]  # routing order
    assert "unreachable" in rows["exo"] and "ready" in rows["backup"]
    assert "ready" in rows["studio"] and "v1" in rows["studio"] and PLACED in rows["studio"]
    assert "can answer now: studio, backup, evil" in text_of(browser, "status-line")
    # The key: masked, with where it comes from; no piece of it anywhere in the page.
    assert "sk-…9a1c (env EXB_BACKUP_KEY)" in rows["backup"], rows["backup"]
    assert not [piece for piece in pieces(BACKUP_KEY) if piece in browser.page_source]
    exo = text_of(browser, "exo")
    assert "studio" in exo and "2 node(s)" in exo and PLACED in exo and PAYLOAD_PLACED in exo
    browser.save_screenshot(str(artifacts / "providers.png"))
    assert console_errors(browser) == []


def test_recent_requests_and_spend_come_from_the_history(browser, serve, artifacts) -> None:
    if not serve.has_history:
        assert "history not available" in text_of(browser, "requests")
        pytest.skip("this version has no history database (issue 11)")
    wait_for(browser, lambda d: len(request_rows(d)) == 3, "three requests")
    rows = request_rows(browser)
    assert "studio" in rows[0] and "free" in rows[0]  # newest first
    assert "failed" in rows[1]
    assert "backup" in rows[2] and "$0.01" in rows[2] and "exo failed: connection refused → backup ✓" in rows[2]
    browser.execute_script("document.querySelectorAll('#requests-body tr')[1].click()")
    wait_for(browser, lambda d: PAYLOAD_PROMPT in text_of(d, "request-detail"), "the request's prompt, as text")
    assert PAYLOAD_ERROR in text_of(browser, "request-detail")
    browser.execute_script("document.querySelectorAll('#requests-body tr')[0].click()")
    wait_for(browser, lambda d: "Tool calls" in text_of(d, "request-detail"), "the newest request's tool calls")
    detail = text_of(browser, "request-detail")
    assert f"where({TOOL_ARGUMENTS})" in detail and "They ask where it runs." in detail
    assert browser.execute_script("return window.__pwnedTool") is None
    wait_for(browser, lambda d: "$0.01" in text_of(d, "spend-providers"), "spend per provider")
    assert "backup" in text_of(browser, "spend-providers")
    assert "backup daily: $0.01 of $1.00, $0.99 left" in text_of(browser, "spend-budgets")
    rows = provider_rows(browser)
    assert "today: $0.99 of $1.00" in rows["backup"]  # budget left, in the providers table
    assert "today" not in rows["studio"]  # no limit of its own, and no overall one
    assert browser.execute_script("return window.__pwnedHistory") is None
    browser.save_screenshot(str(artifacts / "history.png"))
    browser.execute_script("document.getElementById('spend').scrollIntoView()")
    browser.save_screenshot(str(artifacts / "spend.png"))
    browser.execute_script("window.scrollTo(0, 0)")
    assert console_errors(browser) == []


def test_a_playground_message_streams_names_the_provider_and_the_failover(browser, serve, upstreams, artifacts):
    send_message(browser, "m", "Hi there")
    wait_for(browser, lambda d: ("assistant", "Hello from backup") in turns(d), "the streamed answer")
    said = [text for _, text in turns(browser)]
    assert "Hi there" in said
    assert any(text.startswith("answered by backup") for text in said), said
    assert "failover: exo failed (connect), studio skipped (model_unavailable)" in said, said
    # Exo refused the connection: it is cooling down now, and the table counts its time down.
    wait_for(browser, lambda d: " left" in provider_rows(d)["exo"], "exo's cooldown in the providers table")
    first = provider_rows(browser)["exo"]
    assert "cooling down after connect failure" in first and "s left" in first
    wait_for(browser, lambda d: provider_rows(d)["exo"] != first, "the time left to count down")
    # The conversation goes on: the second request carries the first exchange.
    send_message(browser, "m", "And again")
    wait_for(browser, lambda d: [t for t in turns(d) if t[0] == "assistant"][1:], "the second answer")
    last = [r for r in upstreams[0].requests if r.method == "POST"][-1].json()
    assert [(m["role"], m["content"]) for m in last["messages"]] == [
        ("user", "Hi there"),
        ("assistant", "Hello from backup"),
        ("user", "And again"),
    ]
    if serve.has_history:  # serve records its requests: the playground's show up in Recent requests
        wait_for(browser, lambda d: len(request_rows(d)) == 5, "the playground's two requests in the history")
        assert "backup" in request_rows(browser)[0]
        browser.execute_script("document.querySelectorAll('#requests-body tr')[0].click()")
        wait_for(browser, lambda d: "user: And again" in text_of(d, "request-detail"), "the newest request")
    browser.execute_script("document.getElementById('playground').scrollIntoView()")
    browser.save_screenshot(str(artifacts / "playground.png"))
    assert console_errors(browser) == []


def test_html_in_a_model_id_or_an_error_body_is_shown_not_run(browser, serve, artifacts) -> None:
    picker_ids = browser.execute_script(
        "return Array.from(document.querySelectorAll('#model-picker option')).map(o => o.textContent)"
    )
    assert f"evil:{PAYLOAD_MODEL}" in picker_ids
    send_message(browser, f"evil:{PAYLOAD_MODEL}", "Hi")
    wait_for(browser, lambda d: any(c == "error" for c, _ in turns(d)), "the provider's error")
    error = next(text for c, text in turns(browser) if c == "error")
    assert PAYLOAD_ERROR in error and "evil rejected the request" in error
    assert "tried: evil failed (bad_request)" in [text for _, text in turns(browser)]
    assert browser.find_elements("css selector", "#main img") == []
    pwned = "return [window.__pwnedModel, window.__pwnedError, window.__pwnedPlaced, window.__pwnedHistory]"
    assert browser.execute_script(pwned) == [None, None, None, None]
    # Even if some text did become markup, the browser would not run it: the page's CSP forbids inline script.
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s);"
        "const i = document.createElement('img'); i.src = 'x'; i.setAttribute('onerror', 'window.__inline = 2');"
        "document.body.append(i);"
    )
    refused = wait_for(
        browser,
        lambda d: [e for e in d.get_log("browser") if "Content Security Policy" in e["message"]],
        "the browser's CSP report",
    )
    assert refused and browser.execute_script("return window.__inline") is None
    browser.execute_script("document.getElementById('playground').scrollIntoView()")
    browser.save_screenshot(str(artifacts / "injection.png"))


@pytest.mark.process  # a second serve process, with a key
def test_with_a_client_key_the_page_asks_for_it_and_works_after(browser, upstreams, tmp_path_factory, artifacts):
    backup, evil, _ = upstreams
    home = tmp_path_factory.mktemp("dashboard-key") / "home"
    studio = LoopbackServer()
    cluster = CurrentExo(studio) if CurrentExo else exo_v1_cluster()
    config = dashboard_config(f"http://127.0.0.1:{closed_port()}", studio, backup, evil)
    keyed = ServeProcess(
        serve_env(home, textwrap.dedent(config), EXB_DASHBOARD_KEY=CLIENT_KEY, EXB_BACKUP_KEY=BACKUP_KEY),
        "--api-key-env",
        "EXB_DASHBOARD_KEY",
    )
    try:
        browser.get(keyed.url + "/")
        form = wait_for(browser, lambda d: d.find_element("id", "key-form").is_displayed() and d, "the key form")
        assert not form.find_element("id", "main").is_displayed()
        browser.save_screenshot(str(artifacts / "client-key.png"))
        browser.find_element("id", "key-input").send_keys("wrong-key")
        browser.find_element("css selector", "#key-form button").click()
        wait_for(browser, lambda d: "refused" in text_of(d, "key-problem"), "the refusal")
        browser.find_element("id", "key-input").send_keys(CLIENT_KEY)
        browser.find_element("css selector", "#key-form button").click()
        wait_for(browser, lambda d: len(provider_rows(d)) == 4, "the providers, once the key is given")
        assert browser.execute_script("return sessionStorage.getItem('exobridge.clientKey')") == CLIENT_KEY
        assert CLIENT_KEY not in browser.current_url
        assert browser.get_cookies() == []
        send_message(browser, "backup:cloud-1", "Hi")
        wait_for(browser, lambda d: ("assistant", "Hello from backup") in turns(d), "an answer with the key")
        if CurrentExo is not None:  # issue 12 is in: load a model onto Exo from the page, with progress
            wait_for(browser, lambda d: click_load(d, V1_ID), "a Load button for the Exo model")
            wait_for(browser, lambda d: "ready" in text_of(d, "exo-progress-text"), "the load to end ready")
            assert cluster.placed and len(cluster.place_bodies) == 1
            assert V1_ID in text_of(browser, "exo-progress-text")
            wait_for(browser, lambda d: V1_ID in provider_rows(d)["studio"], "the model placed, in the table")
            browser.execute_script("document.getElementById('exo').scrollIntoView()")
            browser.save_screenshot(str(artifacts / "exo-load.png"))
    finally:
        keyed.stop()
        studio.close()
    assert CLIENT_KEY not in keyed.text()
