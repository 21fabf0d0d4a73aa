"""Budgets: `[budget]` parsed strictly, enforced before sending, at their edges (exactly at the limit, the local
day and month boundaries), with the 80 % notice and overrides that say so."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest

from exobridge.core import budget, history, spend
from exobridge.core.routing import ChatRequest
from tests.conftest import local_config
from tests.loopback import stream_words

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


@pytest.fixture
def tz(monkeypatch):
    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield use
    os.environ.pop("TZ", None)
    time.tzset()


def test_parse_is_strict():
    plan = budget.parse({"daily_usd": 2, "monthly_usd": 20.5, "free_only": False, "openrouter": {"daily_usd": 1}})
    assert plan.overall == budget.Limits(2.0, 20.5) and plan.providers == {"openrouter": budget.Limits(1.0, None)}
    assert not budget.parse(None).active
    for bad in (
        {"daily_usd": -1},
        {"daily_usd": "2"},
        {"daily_usd": float("nan")},
        {"free_only": 1},
        {"weekly": 2},
        {"openrouter": {"hourly_usd": 1}},
    ):
        with pytest.raises(budget.BudgetProblem):
            budget.parse(bad)


def test_a_bad_budget_is_a_config_error(write_config, cli):
    write_config(local_config() + "\n[budget]\ndaily_usd = -2\n")
    proc = cli("chat", "Hi")
    assert proc.exit_code == 4 and "budget.daily_usd" in proc.stderr


def test_day_and_month_start_in_the_local_time_zone(tz):
    tz("America/New_York")
    # 2026-12-01 03:30 UTC is still 2026-11-30 22:30 in New York.
    now = datetime.fromisoformat("2026-12-01T03:30:00+00:00").timestamp()
    assert budget.period_start("daily", now) == datetime.fromisoformat("2026-11-30T00:00:00-05:00").timestamp()
    assert budget.period_start("monthly", now) == datetime.fromisoformat("2026-11-01T00:00:00-04:00").timestamp()
    tz("Asia/Tokyo")  # the same instant is already 2026-12-01 12:30 in Tokyo: a new day and a new month
    assert budget.period_start("daily", now) == datetime.fromisoformat("2026-12-01T00:00:00+09:00").timestamp()
    assert budget.period_start("monthly", now) == budget.period_start("daily", now)


class Fake:
    """Spending by (since, provider), from a list of (ts, provider, cost)."""

    def __init__(self, spent):
        self.spent = spent

    def __call__(self, since, provider):
        return sum(c for ts, p, c in self.spent if ts >= since and (provider is None or p == provider))


def provider(name="openrouter", kind="openrouter"):
    from exobridge.core.config import ProviderConfig

    return ProviderConfig(name=name, kind=kind, urls=["http://127.0.0.1:9"], priority=1)


REQUEST = ChatRequest(messages=[{"role": "user", "content": "x" * 400}], model="m", max_tokens=1000)


def test_exactly_at_the_limit_is_over_and_says_how_much(tz):
    tz("UTC")
    now = datetime.fromisoformat("2026-11-30T12:00:00+00:00").timestamp()
    check = budget.BudgetCheck(budget.parse({"daily_usd": 2.0}), Fake([(now - 60, "openrouter", 2.0)]), now=lambda: now)
    assert check.check(provider(), None, REQUEST) == "over daily budget: $2.00 of $2.00"
    check = budget.BudgetCheck(budget.parse({"daily_usd": 2.0}), Fake([(now - 60, "x", 2.03)]), now=lambda: now)
    assert check.check(provider(), None, REQUEST) == "over daily budget: $2.03 of $2.00"
    check = budget.BudgetCheck(budget.parse({"daily_usd": 2.0}), Fake([(now - 60, "x", 1.99)]), now=lambda: now)
    assert check.check(provider(), None, REQUEST) is None
    assert check.notices == ["daily budget 100% used: $1.99 of $2.00"]


def test_yesterday_and_last_month_do_not_count(tz):
    tz("Europe/Berlin")
    now = datetime.fromisoformat("2026-12-01T00:30:00+01:00").timestamp()  # just after local midnight, new month
    spent = Fake([(now - 3600, "openrouter", 5.0)])  # 23:30 the evening before, November
    plan = budget.parse({"daily_usd": 1.0, "monthly_usd": 1.0})
    assert budget.BudgetCheck(plan, spent, now=lambda: now).check(provider(), None, REQUEST) is None
    later = now + 2 * 3600
    spent.spent.append((now + 60, "openrouter", 1.0))
    assert budget.BudgetCheck(plan, spent, now=lambda: later).check(provider(), None, REQUEST) == (
        "over daily budget: $1.00 of $1.00"
    )


def test_per_provider_limit_and_free_kinds_never_skipped():
    now = time.time()
    plan = budget.parse({"openrouter": {"monthly_usd": 3.0}})
    spent = Fake([(now, "openrouter", 3.5)])
    check = budget.BudgetCheck(plan, spent)
    assert check.check(provider(), None, REQUEST) == "over monthly budget for openrouter: $3.50 of $3.00"
    assert check.check(provider("hf", "huggingface"), None, REQUEST) is None
    plan = budget.parse({"daily_usd": 0.0, "free_only": True})
    assert budget.BudgetCheck(plan, spent).check(provider("exo", "exo"), None, REQUEST) is None


def test_worst_case_would_cross_the_limit():
    now = time.time()
    spend.store_prices("openrouter", {"big": {"prompt": 0.001, "completion": 0.001}})  # per token
    check = budget.BudgetCheck(budget.parse({"daily_usd": 2.0}), Fake([(now, "openrouter", 0.5)]))
    # 100 prompt tokens (400 characters) + 1000 max_tokens at $0.001 = $1.10; $1.50 left: fits.
    assert check.check(provider(), "big", REQUEST) is None
    check = budget.BudgetCheck(budget.parse({"daily_usd": 2.0}), Fake([(now, "openrouter", 1.0)]))
    assert (
        check.check(provider(), "big", REQUEST) == "would cross daily budget: worst case $1.10 with $1.00 left of $2.00"
    )


def test_free_only():
    spend.store_prices(
        "openrouter", {"free": {"prompt": 0, "completion": 0}, "paid": {"prompt": 1e-6, "completion": 1e-6}}
    )
    check = budget.BudgetCheck(budget.parse({"free_only": True}), Fake([]))
    assert check.check(provider(), "free", REQUEST) is None
    assert check.check(provider(), "paid", REQUEST) == "free_only budget: not a free model"
    assert check.check(provider(), "unlisted", REQUEST) == "free_only budget: price unknown"


def test_override_sends_and_says_so():
    check = budget.BudgetCheck(budget.parse({"daily_usd": 1.0}), Fake([(time.time(), "x", 1.0)]), override=True)
    assert check.check(provider(), None, REQUEST) is None
    assert check.notices == ["budget override: openrouter over daily budget: $1.00 of $1.00; sending anyway"]


def spent_today(amount: float) -> None:
    with history.Store() as store:
        store.add(
            history.Entry(
                conversation="c",
                prompt="p",
                reply="r",
                outcome="complete",
                provider="openrouter",
                cost=amount,
                cost_source="reported",
            )
        )


def two_providers(server, write_config, extra: str):
    cloud, local = server(), server()
    cloud.route("POST", "/chat/completions")(stream_words(["cloud"], model="m"))
    local.route("POST", "/v1/chat/completions")(stream_words(["local"], model="m"))
    write_config(
        local_config(openrouter=cloud.url)
        + f'[providers.local]\nkind = "openai"\nurl = "{local.url}/v1"\npriority = 5\n'
        + extra
    )
    return cloud, local


def test_chat_skips_a_provider_over_budget_with_the_reason(server, write_config, cli):
    cloud, _ = two_providers(server, write_config, "[budget]\ndaily_usd = 2.0\n")
    spent_today(2.03)
    proc = cli("chat", "-m", "x", "--key", f"openrouter={KEY}", "--json", "Hi")
    assert proc.exit_code == 0, proc.stderr
    data = proc.json()
    assert data["text"] == "local" and data["provider"] == "local"
    skipped = data["attempts"][0]
    assert (skipped["provider"], skipped["outcome"], skipped["reason"]) == (
        "openrouter",
        "skipped",
        "over daily budget: $2.03 of $2.00",
    )
    assert cloud.requests == []


def test_budget_override_sends_and_says_so_on_stderr(server, write_config, cli):
    _cloud, _ = two_providers(server, write_config, "[budget]\ndaily_usd = 2.0\n")
    spent_today(2.5)
    proc = cli("chat", "-m", "x", "--key", f"openrouter={KEY}", "--budget-override", "--quiet", "Hi")
    assert proc.exit_code == 0 and proc.stdout == "cloud\n"
    assert "budget override: openrouter over daily budget: $2.50 of $2.00; sending anyway" in proc.stderr
    pinned = cli("chat", "-m", "x", "-p", "openrouter", "--key", KEY, "Hi")
    assert pinned.stdout == "cloud\n" and "budget override" in pinned.stderr


def test_eighty_percent_notice(server, write_config, cli):
    two_providers(server, write_config, "[budget]\ndaily_usd = 2.0\n")
    spent_today(1.7)
    proc = cli("chat", "-m", "x", "--key", f"openrouter={KEY}", "Hi")
    assert proc.stdout == "cloud\n" and "daily budget 85% used: $1.70 of $2.00" in proc.stderr


def test_usage_shows_each_budget_and_what_is_left(write_config, cli):
    write_config(local_config() + "[budget]\ndaily_usd = 2.0\n[budget.openrouter]\nmonthly_usd = 10.0\n")
    spent_today(0.5)
    budgets = cli("usage", "--json").json()["budgets"]
    assert {(b["scope"], b["period"], b["left"]) for b in budgets} == {
        ("overall", "daily", 1.5),
        ("openrouter", "monthly", 9.5),
    }
    assert "daily budget: $0.50 of $2.00 ($1.50 left)" in cli("usage").stdout


def test_import_legacy_maps_billing_protection_and_free_models_only(write_config, cli):
    import json
    import tomllib
    from pathlib import Path

    legacy = Path(os.environ["HOME"]) / ".token_manager_config.json"
    legacy.write_text(
        json.dumps(
            {
                "providers": [{"name": "Exo", "type": "local", "base_url": "http://localhost:52415"}],
                "billing_protection": {"enabled": True, "max_daily_cost": 1.5, "max_monthly_cost": 12},
                "free_models_only": True,
            }
        )
    )
    write_config("[budget]\nmonthly_usd = 30.0\n")
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 0, proc.stderr
    assert "+ budget.daily_usd = 1.5 (from the legacy billing_protection.max_daily_cost)" in proc.stderr
    assert "kept budget.monthly_usd = 30.0" in proc.stderr  # the user's own value wins
    assert "+ budget.free_only = true (from the legacy free_models_only)" in proc.stderr
    assert "no exobridge equivalent" not in proc.stderr
    written = tomllib.loads(Path(os.environ["EXOBRIDGE_CONFIG"]).read_text())
    assert written["budget"] == {"monthly_usd": 30.0, "daily_usd": 1.5, "free_only": True}
    from exobridge.core import config

    assert config.load().budget == budget.Budget(budget.Limits(1.5, 30.0), {}, True)


def test_import_legacy_leaves_disabled_billing_protection_out(write_config, cli):
    import json
    from pathlib import Path

    legacy = Path(os.environ["HOME"]) / ".token_manager_config.json"
    legacy.write_text(json.dumps({"providers": [], "billing_protection": {"enabled": False, "max_daily_cost": 1}}))
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 0, proc.stderr
    assert "budget" not in proc.stderr and "not imported (no exobridge equivalent): billing_protection" in proc.stderr


def test_providers_list_shows_each_budget_and_what_is_left(write_config, cli):
    write_config(
        local_config(openrouter="http://127.0.0.1:9")
        + "[budget]\ndaily_usd = 2.0\n[budget.openrouter]\nmonthly_usd = 10.0\n"
    )
    spent_today(0.5)
    rows = {r["name"]: r for r in cli("providers", "list", "--json").json()["providers"]}
    assert {(b["scope"], b["period"], b["left"]) for b in rows["openrouter"]["budgets"]} == {
        ("overall", "daily", 1.5),
        ("openrouter", "monthly", 9.5),
    }
    assert [b["scope"] for b in rows["exo"]["budgets"]] == ["overall"]
    shown = cli("providers", "list").stdout
    assert "daily budget: $0.50 of $2.00 ($1.50 left)" in shown
    assert "monthly budget for openrouter: $0.50 of $10.00 ($9.50 left)" in shown
