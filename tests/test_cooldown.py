"""Remembered cooldowns: what puts a node in cooldown, the skip rule, clearing, and the shared state file."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from exobridge.core import model_targets
from exobridge.core.cooldown import CooldownStore, FileRouteState
from exobridge.core.errors import Failure, FailureKind
from exobridge.core.routing import ChatRequest, Router
from tests.conftest import local_config
from tests.loopback import closed_port, stream_words
from tests.test_routing import make_config, two_providers


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def store(state_dir: Path, clock: Clock) -> CooldownStore:
    """A fresh store per run, as each CLI run reads the file anew."""
    return CooldownStore(state_dir, clock=clock)


def run(cfg: Any, state_dir: Path, clock: Clock) -> Any:
    router = Router(cfg, state=FileRouteState(store(state_dir, clock)), sleep=lambda s: None)
    request = ChatRequest(messages=[{"role": "user", "content": "Hi"}], model="m")
    return router.run(request, model_targets.targets("m", cfg))


def outcomes(result: Any) -> list[tuple[str, str]]:
    return [(a.provider, a.outcome) for a in result.attempts]


def test_connect_failure_cools_down_and_next_run_skips_it(backup, state_dir, clock):
    cfg = two_providers(f"http://127.0.0.1:{closed_port()}", backup.url)
    first = run(cfg, state_dir, clock)
    assert outcomes(first) == [("first", "failed"), ("second", "ok")]

    clock.now += 7
    second = run(cfg, state_dir, clock)
    assert outcomes(second) == [("first", "skipped"), ("second", "ok")]
    assert second.attempts[0].reason == "cooling down after connect failure, 23 s left"
    assert second.text == "from backup"

    clock.now += 24  # the cooldown is over: the node is tried again
    third = run(cfg, state_dir, clock)
    assert outcomes(third)[0] == ("first", "failed")


def accepted_connections(hole: socket.socket) -> int:
    """How many connections reached the listening socket since the last call (they wait in its queue)."""
    hole.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = hole.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_black_hole_timeout_is_paid_once(backup, state_dir, clock):
    """The first run waits out the first-token timeout of a node that accepts and never answers; the next
    run does not connect to it at all."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)  # never accepted while the router runs: the kernel completes the handshake, nobody answers
        cfg = two_providers(f"http://127.0.0.1:{hole.getsockname()[1]}", backup.url, first_token_timeout=0.1)
        first = run(cfg, state_dir, clock)
        assert outcomes(first) == [("first", "failed"), ("second", "ok")]
        assert accepted_connections(hole) == 1
        result = run(cfg, state_dir, clock)
        assert accepted_connections(hole) == 0
    assert outcomes(result) == [("first", "skipped"), ("second", "ok")]
    assert result.attempts[0].reason.startswith("cooling down after first-token timeout")


def test_only_candidate_left_is_tried_and_success_clears_it(server, state_dir, clock):
    flaky = server()
    flaky.route("POST", "/chat/completions")(stream_words(["back"]))
    cfg = make_config({"only": {"kind": "openai", "url": flaky.url}})
    st = store(state_dir, clock)
    st.record_failure(cfg.providers["only"], flaky.url, Failure(FailureKind.SERVER, "HTTP 503: overloaded", 503))
    assert store(state_dir, clock).active("only", flaky.url) is not None

    result = run(cfg, state_dir, clock)
    assert outcomes(result) == [("only", "ok")]
    assert store(state_dir, clock).get("only", flaky.url) is None


def test_skipped_node_is_tried_once_everything_after_it_failed(server, state_dir, clock):
    """A cooldown never turns a possible answer into "no provider could answer"."""
    back = server()
    back.route("POST", "/chat/completions")(stream_words(["back ", "up"]))
    cfg = two_providers(back.url, f"http://127.0.0.1:{closed_port()}")
    store(state_dir, clock).record_failure(cfg.providers["first"], back.url, Failure(FailureKind.CONNECT, "refused"))
    result = run(cfg, state_dir, clock)
    assert outcomes(result) == [("first", "skipped"), ("second", "failed"), ("first", "ok")]
    assert result.exit_code == 0 and result.text == "back up"
    assert store(state_dir, clock).get("first", back.url) is None


def test_all_cooling_down_are_still_tried_in_order(server, backup, state_dir, clock):
    dead = f"http://127.0.0.1:{closed_port()}"
    cfg = two_providers(dead, backup.url)
    st = store(state_dir, clock)
    for name, url in (("first", dead), ("second", backup.url)):
        st.record_failure(cfg.providers[name], url, Failure(FailureKind.CONNECT, "connection refused"))
    result = run(cfg, state_dir, clock)
    # "first" has a later candidate, but that one is cooling down too, so nothing is usable: both are tried.
    assert outcomes(result) == [("first", "failed"), ("second", "ok")]
    assert store(state_dir, clock).get("second", backup.url) is None


def test_cooling_exo_node_is_skipped_for_a_later_node(server, state_dir, clock):
    node = server()
    node.route("POST", "/v1/chat/completions")(stream_words(["hi"], model="m"))
    dead = f"http://127.0.0.1:{closed_port()}"
    cfg = make_config({"exo": {"enabled": True, "urls": [dead, node.url]}}, models={"m": {"exo": "m"}})
    store(state_dir, clock).record_failure(cfg.providers["exo"], dead, Failure(FailureKind.CONNECT, "refused"))
    result = run(cfg, state_dir, clock)
    assert [(a.url, a.outcome) for a in result.attempts] == [(dead, "skipped"), (node.url, "ok")]


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "120"}, 120),
        (429, {}, 60),
        (401, {}, 600),
        (402, {}, 600),
        (403, {}, 600),
        (503, {}, 30),
    ],
)
def test_cooldown_length_by_failure(server, backup, state_dir, clock, status, headers, expected):
    bad = server()
    bad.route("POST", "/chat/completions")(lambda ex: ex.reply(status, {"error": {"message": "no"}}, headers=headers))
    cfg = two_providers(bad.url, backup.url)
    run(cfg, state_dir, clock)
    entry = store(state_dir, clock).get("first", bad.url)
    assert entry is not None and entry.status == status
    assert entry.until - clock.now == pytest.approx(expected)


def test_provider_cooldown_setting_overrides_the_default(server, backup, state_dir, clock):
    cfg = two_providers(f"http://127.0.0.1:{closed_port()}", backup.url, cooldown=5)
    run(cfg, state_dir, clock)
    entry = store(state_dir, clock).get("first", cfg.providers["first"].url)
    assert entry is not None and entry.until - clock.now == pytest.approx(5)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"message": "messages: field required"}}),  # bad_request: the request's fault
        (404, {"error": {"message": "model not found"}}),  # model not available there
    ],
)
def test_request_faults_and_missing_models_do_not_cool_down(server, backup, state_dir, clock, status, body):
    bad = server()
    bad.route("POST", "/chat/completions")(lambda ex: ex.reply(status, body))
    run(two_providers(bad.url, backup.url), state_dir, clock)
    assert store(state_dir, clock).entries() == []


def test_corrupt_state_file_is_ignored_with_one_warning(backup, state_dir, clock):
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text("{not json", encoding="utf-8")
    cfg = two_providers(f"http://127.0.0.1:{closed_port()}", backup.url)
    state = FileRouteState(store(state_dir, clock))
    result = Router(cfg, state=state).run(
        ChatRequest(messages=[{"role": "user", "content": "Hi"}], model="m"), model_targets.targets("m", cfg)
    )
    assert result.exit_code == 0
    assert len(state.warnings) == 1 and "corrupt state file" in state.warnings[0]
    data = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
    assert list(data["nodes"]) == [f"first {cfg.providers['first'].url}"]


# --- the CLI, as users run it ---------------------------------------------------------------------


def test_cli_corrupt_state_file_warns_once_and_chat_still_answers(backup, write_config, cli, isolated):
    write_config(local_config(exo=None, openrouter=backup.url, extra='[models."llama-3.2-3b"]\nopenrouter = "m"\n'))
    (isolated / "cache").mkdir()
    (isolated / "cache" / "state.json").write_bytes(b"\x00\xff garbage")
    proc = cli("chat", "Hi", env={"OPENROUTER_API_KEY": "test-key"})
    assert proc.exit_code == 0, proc.stderr
    assert proc.stdout == "from backup\n"
    assert proc.stderr.count("warning:") == 1 and "state file" in proc.stderr


def test_cli_unreadable_state_file_warns_once_and_chat_still_answers(backup, write_config, cli, isolated):
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}", openrouter=backup.url))
    (isolated / "cache" / "state.json").mkdir(parents=True)  # unreadable and unwritable, even for root
    proc = cli("chat", "Hi", env={"OPENROUTER_API_KEY": "test-key"})
    assert proc.exit_code == 0, proc.stderr
    assert proc.stdout == "from backup\n"
    assert proc.stderr.count("warning:") == 1 and "unreadable state file" in proc.stderr


def test_cli_concurrent_runs_keep_every_entry(backup, write_config, isolated):
    """Four `chat` runs at once (threads released together, each with its own IO) each record their dead node.

    The state file's lock is an flock on its own open file, so threads take turns as processes do.
    """
    import threading

    from exobridge.cli.chat_run import ChatOptions, chat_run
    from exobridge.render.io import IOStreams, use

    names = [f"dead{i}" for i in range(4)]
    extra = "".join(
        f'[providers.{n}]\nkind = "openai"\nurl = "http://127.0.0.1:{closed_port()}"\npriority = 5\n\n' for n in names
    )
    extra += f'[providers.good]\nkind = "openai"\nurl = "{backup.url}"\npriority = 9\n'
    write_config(local_config(extra=extra))
    start = threading.Barrier(len(names))
    runs: list[tuple[int, str, str]] = []

    def run(name: str) -> None:
        io = IOStreams.test()
        start.wait(timeout=30)
        with use(io):
            code = chat_run(ChatOptions(prompt="Hi", model="m", providers=[name, "good"]), io)
        runs.append((code, io.stdout_text(), io.stderr_text()))

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(runs) == len(names)
    for code, out, err in runs:
        assert code == 0, err
        assert out == "from backup\n"
    data = json.loads((isolated / "cache" / "state.json").read_text(encoding="utf-8"))
    assert sorted(entry["provider"] for entry in data["nodes"].values()) == names
    assert not list((isolated / "cache").glob("*.tmp"))


def test_cli_second_run_skips_the_dead_node_and_reset_clears(backup, write_config, cli, isolated):
    dead = f"http://127.0.0.1:{closed_port()}"
    extra = (
        f'[providers.dead]\nkind = "openai"\nurl = "{dead}"\npriority = 0\n\n'
        f'[providers.good]\nkind = "openai"\nurl = "{backup.url}"\npriority = 1\n'
    )
    write_config(local_config(extra=extra))
    assert cli("chat", "-m", "m", "Hi").exit_code == 0
    proc = cli("chat", "-m", "m", "--json", "Hi")
    attempts = json.loads(proc.stdout)["attempts"]
    assert attempts[0]["outcome"] == "skipped"
    assert attempts[0]["reason"].startswith("cooling down after connect failure, ")

    listed = json.loads(cli("providers", "list", "--json").stdout)
    dead_row = next(p for p in listed["providers"] if p["name"] == "dead")
    assert dead_row["cooldowns"][0]["url"] == dead

    assert cli("providers", "reset", "nosuch").exit_code == 2
    proc = cli("providers", "reset", "dead")
    assert proc.exit_code == 0 and "cleared 1" in proc.stdout
    attempts = json.loads(cli("chat", "-m", "m", "--json", "Hi").stdout)["attempts"]
    assert attempts[0]["outcome"] == "failed"
    assert "cleared 1" in cli("providers", "reset").stdout
    assert json.loads((isolated / "cache" / "state.json").read_text())["nodes"] == {}


def test_cooldown_zero_never_keeps_away_from_a_provider(backup, state_dir, clock):
    cfg = two_providers(f"http://127.0.0.1:{closed_port()}", backup.url, cooldown=0)
    first = run(cfg, state_dir, clock)
    second = run(cfg, state_dir, clock)
    assert outcomes(first) == outcomes(second) == [("first", "failed"), ("second", "ok")]


def test_cooldown_zero_can_be_set_from_the_command_line(write_config, cli):
    write_config("")
    assert cli("config", "set", "providers.exo.cooldown", "0").exit_code == 0
    assert float(cli("config", "get", "providers.exo.cooldown").stdout) == 0
