"""The dashboard's first paint (issue 14: at most 1 s on this machine against a local `serve`).

    python3 bench/dashboard.py                      # 10 page loads, median and worst
    python3 bench/dashboard.py --screenshot docs/screenshots/dashboard.png   # also the README picture

Headless Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium) opens `GET /` of an
`exobridge serve` on 127.0.0.1 whose providers are loopback servers (one Exo v1 node with two placed models,
one refusing connections, one OpenAI-compatible). Each load is a fresh navigation; the figures come from the
browser's own clock (Performance API): first paint, first contentful paint, DOMContentLoaded, and the moment
the providers table first shows live data (a `performance.mark` the page sets; it includes serve probing the
providers, which the status cache then spares the next loads).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.loopback import closed_port, stream_words  # noqa: E402
from tests.serve_support import ServeProcess, serve_env  # noqa: E402
from tests.test_dashboard_browser import (  # noqa: E402
    CHROMIUM_FLAGS,
    PLACED,
    dashboard_config,
    exo_v1_cluster,
    seed_history,
)

TARGET_FIRST_PAINT_MS = 1000.0
TIMINGS = """
const nav = performance.getEntriesByType("navigation")[0];
const paint = Object.fromEntries(performance.getEntriesByType("paint").map(e => [e.name, e.startTime]));
const data = performance.getEntriesByName("exobridge-providers")[0];
return {first_paint: paint["first-paint"], first_contentful_paint: paint["first-contentful-paint"],
        dom_content_loaded: nav.domContentLoadedEventEnd, data_shown: data ? data.startTime : null,
        bytes: performance.getEntriesByType("resource").reduce((n, e) => n + e.transferSize, nav.transferSize)};
"""


def browser(profile: Path, height: int) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size=1400,{height}")
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))


def wait(driver: object, script: str, seconds: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds, poll_frequency=0.02).until(lambda d: d.execute_script(script))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--screenshot", type=Path, help="save the dashboard after a playground exchange here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from tests.loopback import LoopbackServer

    backup = LoopbackServer()
    studio = exo_v1_cluster((PLACED, "mlx-community/Qwen2.5-7B-Instruct-4bit"))
    backup.route("GET", "/v1/models")(lambda ex: ex.reply(200, {"object": "list", "data": [{"id": "cloud-1"}]}))
    backup.route("POST", "/v1/chat/completions")(stream_words(["Hello ", "from ", "backup"]))
    evil = LoopbackServer()
    evil.route("GET", "/v1/models")(lambda ex: ex.reply(200, {"object": "list", "data": []}))
    with tempfile.TemporaryDirectory(prefix="exobridge-bench-dashboard-") as tmp:
        home = Path(tmp) / "home"
        seed_history(home)
        config = dashboard_config(f"http://127.0.0.1:{closed_port()}", studio, backup, evil)
        serve = ServeProcess(serve_env(home, textwrap.dedent(config)))
        driver = browser(Path(tmp) / "profile", 1900 if args.screenshot else 1000)
        try:
            loads = []
            for _ in range(args.loads):
                driver.get(serve.url + "/")
                wait(driver, "return performance.getEntriesByName('exobridge-providers').length > 0")
                loads.append(driver.execute_script(TIMINGS))
            if args.screenshot:
                from selenium.webdriver.support.ui import Select

                Select(driver.find_element("id", "model-picker")).select_by_value("m")
                driver.find_element("id", "chat-input").send_keys("Say hello")
                driver.find_element("id", "chat-send").click()
                wait(driver, "return document.querySelector('#transcript li.assistant')?.textContent.length > 10")
                wait(driver, "return document.querySelector('#providers-body td.cooling')?.textContent.length > 0")
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.screenshot))
        finally:
            driver.quit()
            serve.stop()
            for server in (backup, studio, evil):
                server.close()
    summary = {
        name: {
            "median_ms": round(statistics.median(v[name] for v in loads), 1),
            "worst_ms": round(max(v[name] for v in loads), 1),
        }
        for name in ("first_paint", "first_contentful_paint", "dom_content_loaded", "data_shown")
    }
    summary["first_load_data_shown_ms"] = round(loads[0]["data_shown"], 1)
    summary["page_bytes"] = loads[-1]["bytes"]
    ok = summary["first_paint"]["worst_ms"] <= TARGET_FIRST_PAINT_MS
    if args.json:
        print(json.dumps({"loads": args.loads, **summary, "target_first_paint_ms": TARGET_FIRST_PAINT_MS, "ok": ok}))
    else:
        print(f"dashboard, {args.loads} loads against a local serve (browser's Performance API):")
        for name in ("first_paint", "first_contentful_paint", "dom_content_loaded", "data_shown"):
            figures = summary[name]
            print(f"  {name:<24} median {figures['median_ms']:7.1f} ms   worst {figures['worst_ms']:7.1f} ms")
        print(f"  first load, providers shown (serve probes them): {summary['first_load_data_shown_ms']} ms")
        print(f"  bytes transferred per load: {summary['page_bytes']}")
        print(f"first paint <= {TARGET_FIRST_PAINT_MS:g} ms: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
