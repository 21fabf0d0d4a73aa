"""The history database and chat's recording: real SQLite files under the test's data dir."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from exobridge.core import history
from tests.conftest import exobridge_command, local_config
from tests.loopback import Exchange, chunk, stream_words

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


def db_path() -> Path:
    return Path(os.environ["EXOBRIDGE_DATA_DIR"]) / "history.db"


def rows() -> list[dict]:
    with history.Store(db_path(), create=False) as store:
        return [e.to_json() for e in store.list(limit=None)]


def local(server, write_config, words=("Hello", " there"), usage=None, extra: str = ""):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words(list(words), model="served-model", usage=usage))
    write_config(
        local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\n' + extra)
    )
    return srv


def test_store_is_private_wal_versioned_and_searchable(tmp_path):
    path = tmp_path / "new" / "dir" / "history.db"
    with history.Store(path) as store:
        store.add(history.Entry(conversation="c", prompt="the blue whale", reply="swims", outcome="complete"))
        store.add(history.Entry(conversation="c", prompt="red fox", reply="runs", outcome="partial"))
        assert [e.prompt for e in store.search("whale")] == ["the blue whale"]
        assert [e.prompt for e in store.search("runs")] == ["red fox"]
        assert [e.outcome for e in store.list()] == ["partial", "complete"]  # newest first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    conn.close()


def test_a_newer_schema_is_left_alone(tmp_path):
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {history.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(history.HistoryUnavailable, match="newer exobridge"):
        history.Store(path).open()


def test_chat_records_a_complete_request(server, write_config, cli):
    local(server, write_config, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    proc = cli("chat", "-m", "anything", "-s", "be brief", "Hi")
    assert proc.exit_code == 0, proc.stderr
    [row] = rows()
    assert row["prompt"] == "Hi" and row["system"] == "be brief"
    assert row["reply"] == "Hello there"
    assert (row["provider"], row["served_model"], row["requested_model"]) == ("local", "served-model", "anything")
    assert row["outcome"] == "complete"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 2)
    assert row["attempts"][0]["outcome"] == "ok"
    assert row["latency_ms"] is not None and row["first_token_ms"] is not None
    assert (row["cost"], row["cost_source"]) == (0.0, "free")  # a keyless endpoint on this machine costs nothing


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--no-log",), {}), ((), {"EXOBRIDGE_NO_LOG": "1"}), ((), {})],
    ids=["flag", "env", "config"],
)
def test_off_switches_keep_nothing(server, write_config, cli, args, env):
    local(server, write_config)
    if not args and not env:
        path = Path(os.environ["EXOBRIDGE_CONFIG"])
        path.write_text("log = false\n" + path.read_text())
    proc = cli("chat", "-m", "anything", *args, "Hi", env=env)
    assert proc.exit_code == 0, proc.stderr
    assert not db_path().exists()


def test_keys_never_reach_the_database(server, write_config, cli):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words(["your key is ", KEY], model="m"))
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\n'))
    proc = cli("chat", "-m", "anything", "--key", f"local={KEY}", f"repeat {KEY}")
    assert proc.exit_code == 0, proc.stderr
    raw = b"".join(p.read_bytes() for p in db_path().parent.iterdir() if p.is_file())
    assert KEY.encode() not in raw and KEY[-12:].encode() not in raw
    [row] = rows()
    assert "sk-or-…" in row["prompt"] and "sk-or-…" in row["reply"]


def test_a_reply_that_breaks_off_is_partial(server, write_config, cli):
    srv = server()

    def breaks(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Hel", model="m"))
        ex.reset()

    srv.route("POST", "/v1/chat/completions")(breaks)
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\n'))
    proc = cli("chat", "-m", "anything", "Hi")
    assert proc.exit_code == 5
    [row] = rows()
    assert (row["outcome"], row["reply"]) == ("partial", "Hel")


def test_nothing_answered_is_failed(write_config, cli):
    from tests.loopback import closed_port

    url = f"http://127.0.0.1:{closed_port()}"
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{url}/v1"\npriority = 0\n'))
    proc = cli("chat", "-m", "anything", "Hi")
    assert proc.exit_code == 3
    [row] = rows()
    assert row["outcome"] == "failed" and row["reply"] == "" and row["error"]


def test_corrupt_database_is_moved_aside_with_a_message(server, write_config, cli):
    local(server, write_config)
    db_path().parent.mkdir(parents=True)
    db_path().write_bytes(b"this is not a database" * 100)
    proc = cli("chat", "-m", "anything", "Hi")
    assert proc.exit_code == 0 and proc.stdout == "Hello there\n"
    assert proc.stderr.count("warning") == 1 and "moved aside" in proc.stderr
    [aside] = [p for p in db_path().parent.iterdir() if ".corrupt-" in p.name]
    assert aside.read_bytes().startswith(b"this is not a database")
    assert [r["prompt"] for r in rows()] == ["Hi"]


def test_read_only_database_costs_one_warning(server, write_config, cli):
    local(server, write_config)
    assert cli("chat", "-m", "anything", "first").exit_code == 0
    with pytest.MonkeyPatch.context() as patch:
        if os.geteuid() != 0:
            for p in db_path().parent.iterdir():
                p.chmod(0o400)
            db_path().parent.chmod(0o500)
        else:  # root writes read-only files: SQLite opens the database read-only instead
            real = sqlite3.connect

            def read_only(path, *args, **kwargs):
                return real(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

            patch.setattr(sqlite3, "connect", read_only)
        try:
            proc = cli("chat", "-m", "anything", "second")
        finally:
            db_path().parent.chmod(0o700)
    assert proc.exit_code == 0 and proc.stdout == "Hello there\n"
    assert proc.stderr.count("warning") == 1 and "read-only" in proc.stderr, proc.stderr
    assert [r["prompt"] for r in rows()] == ["first"]


def test_locked_database_costs_one_warning(server, write_config, cli, monkeypatch):
    local(server, write_config)
    assert cli("chat", "-m", "anything", "first").exit_code == 0
    monkeypatch.setattr(history, "BUSY_TIMEOUT_S", 0.05)
    holder = sqlite3.connect(db_path(), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = cli("chat", "-m", "anything", "second")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.exit_code == 0 and proc.stdout == "Hello there\n"
    assert proc.stderr.count("warning") == 1 and "locked" in proc.stderr
    assert [r["prompt"] for r in rows()] == ["first"]


def test_serve_history_writer_writes_bursts_and_outlives_a_locked_database(monkeypatch):
    from exobridge.core.history_record import HistoryWriter

    monkeypatch.setattr(history, "BUSY_TIMEOUT_S", 0.05)
    warnings: list[str] = []
    writer = HistoryWriter()

    def submit(prompt: str) -> None:
        entry = history.Entry(conversation="s", prompt=prompt, reply="r", outcome="complete")
        writer.submit(lambda: (entry, None), warnings.append)

    for i in range(150):  # more than one batch, queued faster than written
        submit(f"p{i}")
    assert writer.flush(30)
    assert [r["prompt"] for r in reversed(rows())] == [f"p{i}" for i in range(150)]  # all, in order
    holder = sqlite3.connect(db_path(), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        submit("while locked")
        assert writer.flush(30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(warnings) == 1 and warnings[0].startswith("history not recorded: the database is locked"), warnings
    submit("after")  # the writer is still there, and opens the file again
    elsewhere = db_path().with_name("other.db")  # each request goes where the history was when it came
    other = history.Entry(conversation="s", prompt="other", reply="r", outcome="complete")
    writer.submit(lambda: (other, None), warnings.append, elsewhere)
    writer.close()
    with history.Store(elsewhere, create=False) as store:
        assert [e.prompt for e in store.list()] == ["other"]
    prompts = [r["prompt"] for r in rows()]
    assert prompts[0] == "after" and "while locked" not in prompts and len(prompts) == 151
    assert len(warnings) == 1


def test_full_disk_costs_one_warning(server, write_config, cli, monkeypatch):
    local(server, write_config)

    def full(self, entry, redactor=None):
        raise history.HistoryUnavailable(
            history._describe(sqlite3.OperationalError("database or disk is full"), self.path)
        )

    monkeypatch.setattr(history.Store, "add", full)
    proc = cli("chat", "-m", "anything", "Hi")
    assert proc.exit_code == 0 and proc.stdout == "Hello there\n"
    assert proc.stderr.count("warning") == 1 and "disk is full" in proc.stderr


@pytest.mark.process  # separate processes writing the history at once
def test_twenty_parallel_chat_processes_leave_twenty_rows(server, write_config):
    local(server, write_config)
    procs = [
        subprocess.Popen(
            [*exobridge_command(), "chat", "-m", "anything", f"prompt {i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(20)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(code == 0 for _, _, code in results), results
    assert all("warning" not in err for _, err, _ in results), results
    assert sorted(r["prompt"] for r in rows()) == sorted(f"prompt {i}" for i in range(20))


def test_a_version_1_database_is_migrated_in_place(tmp_path):
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path)
    for statement in history._statements(history.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("INSERT INTO requests (ts, conversation, prompt, outcome) VALUES (1, 'c', 'kept', 'complete')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with history.Store(path) as store:
        assert [e.prompt for e in store.list()] == ["kept"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION == 4
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "requests_usage" in indexes
    # v3: the rollup starts with what the file already held
    assert conn.execute("SELECT slot, provider, outcome, requests FROM usage_rollup").fetchall() == [
        (0, "", "complete", 1)
    ]
    conn.close()


def test_a_version_3_database_gains_reply_parts_and_keeps_its_rows(tmp_path):
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path)
    for script in history.MIGRATIONS[:3]:
        for statement in history._statements(script):
            conn.execute(statement)
    conn.execute("INSERT INTO requests (ts, conversation, prompt, outcome) VALUES (1, 'c', 'kept', 'complete')")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with history.Store(path) as store:
        [old] = store.list()
        assert (old.prompt, old.reply_parts) == ("kept", None)
        call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": f'{{"k": "{KEY}"}}'}}
        store.add(
            history.Entry(
                conversation="d",
                prompt="p",
                reply="",
                outcome="complete",
                reply_parts={"tool_calls": [call], "reasoning": "think"},
            ),
            history_redactor(),
        )
        new = store.list()[0]
    assert new.reply_parts["reasoning"] == "think"
    [stored_call] = new.reply_parts["tool_calls"]
    assert stored_call["function"]["name"] == "f" and KEY not in stored_call["function"]["arguments"]
    assert "sk-or-" in stored_call["function"]["arguments"]  # masked, not dropped
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    conn.close()


def history_redactor():
    from exobridge.core import secrets

    return secrets.Redactor([KEY])


def direct_usage(store: history.Store, since: float | None, until: float | None) -> list[tuple]:
    """What usage_groups must equal: every request in the window added up one by one."""
    found: dict[tuple, list] = {}
    for e in store.iter_all(history.Filters(since=since, until=until)):
        day = time.strftime("%Y-%m-%d", time.localtime(e.ts))
        key = (day, e.provider, e.requested_model, e.served_model, e.cost_source, e.outcome)
        sums = found.setdefault(key, [0, 0, 0, 0.0, 0, 0])
        with_tokens = e.prompt_tokens is not None or e.completion_tokens is not None
        for i, value in enumerate(
            (1, e.prompt_tokens or 0, e.completion_tokens or 0, e.cost or 0.0, e.cost is None, with_tokens)
        ):
            sums[i] += value
    return [key + tuple(sums) for key, sums in found.items()]


def rounded(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows), key=repr)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kathmandu", "America/St_Johns"])
def test_the_usage_rollup_adds_up_exactly_what_the_requests_hold(tmp_path, monkeypatch, zone):
    import random

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    rng = random.Random(11)
    start = 1_764_000_000.0  # 2025-11-24
    path = tmp_path / "history.db"
    with history.Store(path) as store:
        for i in range(600):
            store.add(
                history.Entry(
                    conversation="c",
                    prompt=f"p{i}",
                    reply="r",
                    outcome=rng.choice(history.OUTCOMES),
                    provider=rng.choice(["exo", "openrouter", None]),
                    requested_model=rng.choice(["a", "b", None]),
                    served_model=rng.choice(["a", None]),
                    prompt_tokens=rng.choice([None, rng.randrange(100)]),
                    completion_tokens=rng.choice([None, rng.randrange(100)]),
                    cost=rng.choice([None, 0.0, rng.random() / 100]),
                    cost_source=rng.choice([None, "free", "reported"]),
                    ts=start + rng.uniform(0, 3 * 86400),
                )
            )
        for ident in rng.sample(range(1, 601), 150):  # removed requests leave the rollup too
            store.delete(str(ident))
        store._run("UPDATE requests SET cost = 0.5, provider = 'moved' WHERE id % 7 = 0")
        windows = [
            (None, None),
            (start + 1234.5, None),
            (start + 900 * 10, start + 900 * 20),  # on slot edges
            (start + 100.25, start + 86400 + 777.75),
            (start + 1000, start + 1500),  # inside one slot
            (start + 5 * 86400, None),  # nothing
        ]
        for since, until in windows:
            fast = store.usage_groups(history.Filters(since=since, until=until))
            assert rounded(fast) == rounded(direct_usage(store, since, until)), (since, until)
        for since in (start, start + 4321.0, start + 86400 * 2 + 899.999):
            for provider in (None, "exo", "moved"):
                expected = sum(
                    e.cost
                    for e in store.iter_all(history.Filters(since=since, provider=provider))
                    if e.cost is not None
                )
                assert store.spent_since(since, provider) == pytest.approx(expected, abs=1e-9)
        store.clear()
        assert store._run("SELECT count(*) FROM usage_rollup").fetchone()[0] == 0
    monkeypatch.delenv("TZ")
    time.tzset()


def test_no_usable_data_dir_costs_one_warning(server, write_config, cli, monkeypatch):
    from exobridge.core import paths
    from exobridge.core.errors import ConfigError

    local(server, write_config)

    def no_home():
        raise ConfigError("environment", "HOME", "not set to an absolute path; set HOME")

    monkeypatch.setattr(paths, "data_dir", no_home)
    proc = cli("chat", "-m", "anything", "Hi")
    assert proc.exit_code == 0 and proc.stdout == "Hello there\n"
    assert proc.stderr.count("warning") == 1 and "history not recorded" in proc.stderr
