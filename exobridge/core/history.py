"""The history database: one SQLite file of every request `chat` (and `serve`) sent.

`<data dir>/history.db` (folder 0700, file 0600), WAL mode, a schema version in `PRAGMA user_version` with
forward migrations (`MIGRATIONS`), and an FTS5 index over prompts and replies for `history search`.
sqlite3 is imported only here, and only when the database is opened.

Every string stored went through the run's `secrets.Redactor` first (keys and configured header secrets
never reach the file). Recording never decides a run's fate: any trouble (locked, read-only, corrupt, full
disk) is a `HistoryUnavailable` whose one line the caller prints as a warning. A corrupt file is moved aside
(`history.db.corrupt-<time>`), never silently replaced; the message says where it went.

One row per request. `conversation` groups the turns of one conversation; `parent` is the id of the turn
before it (prior turns are stored once and referenced, not copied). `outcome` is one of `OUTCOMES`:
a reply that broke off is `partial`, one stopped by Ctrl-C/SIGTERM `interrupted`, never `complete`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from exobridge.core.secrets import Redactor

FILE_NAME = "history.db"
NO_LOG_ENV = "EXOBRIDGE_NO_LOG"
SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 10.0
OUTCOMES = ("complete", "partial", "interrupted", "failed")

COLUMNS = (
    "id",
    "ts",
    "conversation",
    "parent",
    "source",
    "system",
    "prompt",
    "messages",
    "reply",
    "provider",
    "node",
    "backend",
    "requested_model",
    "served_model",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_source",
    "latency_ms",
    "first_token_ms",
    "outcome",
    "error",
    "reply_parts",
)

_V1 = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    conversation TEXT NOT NULL,
    parent INTEGER,
    source TEXT NOT NULL DEFAULT 'chat',
    system TEXT,
    prompt TEXT NOT NULL DEFAULT '',
    messages TEXT,
    reply TEXT NOT NULL DEFAULT '',
    provider TEXT,
    node TEXT,
    backend TEXT,
    requested_model TEXT,
    served_model TEXT,
    attempts TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost REAL,
    cost_source TEXT,
    latency_ms INTEGER,
    first_token_ms INTEGER,
    outcome TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests(ts);
CREATE INDEX IF NOT EXISTS requests_conversation ON requests(conversation, id);
CREATE INDEX IF NOT EXISTS requests_provider_ts ON requests(provider, ts);
CREATE VIRTUAL TABLE IF NOT EXISTS requests_fts USING fts5(
    prompt, reply, content='requests', content_rowid='id'
);
CREATE TRIGGER IF NOT EXISTS requests_ai AFTER INSERT ON requests BEGIN
    INSERT INTO requests_fts(rowid, prompt, reply) VALUES (new.id, new.prompt, new.reply);
END;
CREATE TRIGGER IF NOT EXISTS requests_ad AFTER DELETE ON requests BEGIN
    INSERT INTO requests_fts(requests_fts, rowid, prompt, reply) VALUES ('delete', old.id, old.prompt, old.reply);
END;
"""

# v2: a covering index for what `usage` and budget checks add up (they never read the texts).
_V2 = """
CREATE INDEX IF NOT EXISTS requests_usage ON requests(
    ts, provider, requested_model, served_model, cost_source, outcome, prompt_tokens, completion_tokens, cost
);
"""

# v3: `usage_rollup`, what `usage`, budgets and the dashboard add up, kept per 15-minute slot by triggers, so
# adding up a month reads a few thousand rows, not every request. A slot is `CAST(ts / 900 AS INTEGER)`: every
# time zone's offset (and DST change) is a multiple of 15 minutes, so a slot falls in one local day. The key
# columns hold '' for NULL (a primary key of plain columns); readers turn it back into NULL.
ROLLUP_SLOT_S = 900
_ROLLUP_KEY = "slot, provider, requested_model, served_model, cost_source, outcome"
_ROLLUP_ADD = """
INSERT INTO usage_rollup VALUES (
    CAST({row}.ts / 900 AS INTEGER), IFNULL({row}.provider, ''), IFNULL({row}.requested_model, ''),
    IFNULL({row}.served_model, ''), IFNULL({row}.cost_source, ''), {row}.outcome,
    {sign}, {sign} * IFNULL({row}.prompt_tokens, 0), {sign} * IFNULL({row}.completion_tokens, 0),
    {sign} * IFNULL({row}.cost, 0), {sign} * ({row}.cost IS NULL),
    {sign} * ({row}.prompt_tokens IS NOT NULL OR {row}.completion_tokens IS NOT NULL)
) ON CONFLICT ({key}) DO UPDATE SET
    requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens, cost = cost + excluded.cost,
    unknown_cost = unknown_cost + excluded.unknown_cost, with_tokens = with_tokens + excluded.with_tokens;
"""
_V3 = f"""
CREATE TABLE IF NOT EXISTS usage_rollup (
    slot INTEGER NOT NULL,
    provider TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    served_model TEXT NOT NULL,
    cost_source TEXT NOT NULL,
    outcome TEXT NOT NULL,
    requests INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    unknown_cost INTEGER NOT NULL,
    with_tokens INTEGER NOT NULL,
    PRIMARY KEY ({_ROLLUP_KEY})
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS requests_usage_ai AFTER INSERT ON requests BEGIN
{_ROLLUP_ADD.format(row="new", sign=1, key=_ROLLUP_KEY).strip()}
END;
CREATE TRIGGER IF NOT EXISTS requests_usage_ad AFTER DELETE ON requests BEGIN
{_ROLLUP_ADD.format(row="old", sign=-1, key=_ROLLUP_KEY).strip()}
DELETE FROM usage_rollup WHERE requests <= 0 AND slot = CAST(old.ts / 900 AS INTEGER);
END;
CREATE TRIGGER IF NOT EXISTS requests_usage_au AFTER UPDATE ON requests BEGIN
{_ROLLUP_ADD.format(row="old", sign=-1, key=_ROLLUP_KEY).strip()}
{_ROLLUP_ADD.format(row="new", sign=1, key=_ROLLUP_KEY).strip()}
DELETE FROM usage_rollup WHERE requests <= 0 AND slot = CAST(old.ts / 900 AS INTEGER);
END;
INSERT INTO usage_rollup
    SELECT CAST(ts / 900 AS INTEGER), IFNULL(provider, ''), IFNULL(requested_model, ''), IFNULL(served_model, ''),
        IFNULL(cost_source, ''), outcome, count(*), SUM(IFNULL(prompt_tokens, 0)), SUM(IFNULL(completion_tokens, 0)),
        SUM(IFNULL(cost, 0)), SUM(cost IS NULL), SUM(prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL)
    FROM requests WHERE true GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT ({_ROLLUP_KEY}) DO NOTHING;
"""

# v4: `reply_parts`, what the reply held besides its text (tool calls, a refusal, reasoning: JSON of the message
# fields core/reply.py reads), so a request `serve` relayed for an agent keeps the tool calls it answered with.
_V4 = """
ALTER TABLE requests ADD COLUMN reply_parts TEXT;
"""

# MIGRATIONS[n] takes a database at version n to n + 1. Append, never edit a released one.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)


def _statements(script: str) -> list[str]:
    """A script split into whole statements (trigger bodies keep their inner semicolons)."""
    import sqlite3

    found: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    return [s for s in found if s.strip(" ;\n")]


class HistoryUnavailable(Exception):
    """The history cannot be read or written now. `str()` is the one warning line."""


def default_path() -> Path:
    from exobridge.core import paths

    return paths.data_dir() / FILE_NAME


def logging_disabled(config_log: bool = True, no_log_flag: bool = False, env: Mapping[str, str] | None = None) -> bool:
    """`--no-log`, `log = false` in the config, or `EXOBRIDGE_NO_LOG=1` (any value but "", "0", "false")."""
    env = os.environ if env is None else env
    value = env.get(NO_LOG_ENV, "").strip().lower()
    return no_log_flag or not config_log or value not in ("", "0", "false", "no")


def new_conversation_id() -> str:
    return os.urandom(6).hex()  # what secrets.token_hex(6) does, without importing secrets (hashlib, hmac)


@dataclass
class Entry:
    """One request as stored. `id` is None until it is added."""

    conversation: str
    prompt: str
    reply: str
    outcome: str
    ts: float = field(default_factory=time.time)
    parent: int | None = None
    source: str = "chat"
    system: str | None = None
    messages: list[dict[str, Any]] | None = None  # what was sent besides the referenced prior turns
    provider: str | None = None
    node: str | None = None
    backend: str | None = None
    requested_model: str | None = None
    served_model: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    cost_source: str | None = None  # "reported" | "price list" | "free" | None (unknown)
    latency_ms: int | None = None
    first_token_ms: int | None = None
    error: str | None = None
    reply_parts: dict[str, Any] | None = None  # tool calls, refusal, reasoning (reply.MESSAGE_FIELDS), as sent
    id: int | None = None

    def redacted(self, redactor: Redactor | None) -> Entry:
        """A copy with every string field (and every string inside messages/attempts) redacted."""
        if redactor is None or not redactor:
            return self
        from dataclasses import replace

        changes: dict[str, Any] = {}
        for name in ("prompt", "reply", "system", "provider", "node", "backend", "requested_model", "served_model"):
            value = getattr(self, name)
            if isinstance(value, str):
                changes[name] = redactor.redact(value)
        if self.error is not None:
            changes["error"] = redactor.redact(self.error)
        changes["messages"] = redactor.redact_json(self.messages) if self.messages is not None else None
        changes["attempts"] = redactor.redact_json(self.attempts)
        if self.reply_parts is not None:
            changes["reply_parts"] = redactor.redact_json(self.reply_parts)
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in COLUMNS}
        data["time"] = _iso(self.ts)
        return data

    def part_texts(self) -> tuple[str, list[str], str]:
        """(reasoning, tool calls as `name(arguments)`, refusal) that the reply held besides its text, as plain
        (untrusted) text for a page or a terminal to show; empty when it held none."""
        parts = self.reply_parts if isinstance(self.reply_parts, dict) else {}
        names = ("reasoning", "reasoning_content", "reasoning_details")
        reasoning = next((text for name in names if (text := _text_of(parts.get(name)))), "")
        refusal = parts.get("refusal") if isinstance(parts.get("refusal"), str) else ""
        return reasoning, _calls(parts), refusal


def _text_of(value: Any) -> str:
    """Reasoning as text: a string, or the `text`/`summary` strings of `reasoning_details` items."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        found = (item.get("text") or item.get("summary") for item in value if isinstance(item, dict))
        return "\n".join(piece for piece in found if isinstance(piece, str))
    return ""


def _calls(parts: dict[str, Any]) -> list[str]:
    """`name(arguments)` of every tool call (and of an older-style `function_call`)."""
    found = [c.get("function") for c in parts.get("tool_calls") or [] if isinstance(c, dict)]
    if isinstance(parts.get("function_call"), dict):
        found.append(parts["function_call"])
    return [
        f"{f.get('name') or '?'}({f.get('arguments') if isinstance(f.get('arguments'), str) else ''})"
        for f in found
        if isinstance(f, dict)
    ]


def _iso(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _row_entry(row: sqlite3.Row) -> Entry:
    data = dict(zip(row.keys(), tuple(row), strict=True))
    for name in ("messages", "attempts", "reply_parts"):
        raw = data.get(name)
        try:
            data[name] = json.loads(raw) if raw else ([] if name == "attempts" else None)
        except ValueError:
            data[name] = [] if name == "attempts" else None
    return Entry(**{k: data[k] for k in COLUMNS})


@dataclass
class Filters:
    """What `history list` / `export` / `usage` keep. Empty fields keep everything."""

    provider: str | None = None
    model: str | None = None  # requested or served
    outcome: str | None = None
    since: float | None = None  # unix time, inclusive
    until: float | None = None  # unix time, exclusive
    conversation: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.provider:
            clauses.append("provider = ?")
            params.append(self.provider)
        if self.model:
            clauses.append("(requested_model = ? OR served_model = ?)")
            params += [self.model, self.model]
        if self.outcome:
            clauses.append("outcome = ?")
            params.append(self.outcome)
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            params.append(self.until)
        if self.conversation:
            clauses.append("conversation = ?")
            params.append(self.conversation)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _describe(exc: BaseException, path: Path) -> str:
    text = str(exc).strip() or type(exc).__name__
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return f"history not recorded: the database is locked ({path})"
    if "readonly" in lowered or "read-only" in lowered or isinstance(exc, PermissionError):
        return f"history not recorded: the database is read-only ({path})"
    if "full" in lowered or getattr(exc, "errno", None) == 28:
        return f"history not recorded: the disk is full ({path})"
    return f"history not recorded: {text} ({path})"


def _is_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


class Store:
    """An open history database. Use as a context manager; every method may raise HistoryUnavailable."""

    def __init__(self, path: Path | None = None, *, create: bool = True) -> None:
        self.path = default_path() if path is None else Path(path)
        self.moved_aside: Path | None = None  # where a corrupt file went, when one was found on opening
        self._create = create
        self._conn: sqlite3.Connection | None = None

    # --- opening --------------------------------------------------------------------------------------------
    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exists(self) -> bool:
        return self.path.exists()

    def open(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        import sqlite3

        if not self._create and not self.path.exists():
            raise HistoryUnavailable(f"no history yet ({self.path})")
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise HistoryUnavailable(_describe(exc, self.path)) from None
            self._move_aside()
            try:
                self._conn = self._connect()
            except (sqlite3.Error, OSError) as again:
                raise HistoryUnavailable(_describe(again, self.path)) from None
        except OSError as exc:
            raise HistoryUnavailable(_describe(exc, self.path)) from None
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        from exobridge.core import files

        files.make_private_dir(self.path.parent)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # reads the header: corrupt -> error
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            # No fsync per request: closing the last connection checkpoints and removes the WAL, and with
            # NORMAL that costs two syncs (~10 ms, 3 % of a chat). The price: an OS crash or power loss can lose
            # the last requests or damage the file, which is then moved aside (docs/history.md).
            conn.execute("PRAGMA synchronous = OFF")
            if version < SCHEMA_VERSION:
                self._migrate(conn)
            elif version > SCHEMA_VERSION:
                raise HistoryUnavailable(
                    f"history database {self.path} is from a newer exobridge (schema {version}); not touched"
                )
        except BaseException:
            conn.close()
            raise
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(f"{self.path}{suffix}", 0o600)
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # one writer migrates; the others wait, then see the new version
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[step]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _move_aside(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self.path, target)
            for suffix in ("-wal", "-shm"):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    os.replace(side, Path(f"{target}{suffix}"))
        except OSError as exc:
            raise HistoryUnavailable(
                f"history database {self.path} is corrupt and could not be moved aside: {exc}"
            ) from None
        self.moved_aside = target

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self, sql: str, params: Any = (), *, writing: bool = False) -> sqlite3.Cursor:
        """Execute on the open connection; a SQLite error is a HistoryUnavailable that says the history is
        unavailable, or (`writing`) that the request was not recorded."""
        import sqlite3

        conn = self.open()
        try:
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            message = _describe(exc, self.path)
            raise HistoryUnavailable(message if writing else message.replace("not recorded", "unavailable")) from None

    # --- writing --------------------------------------------------------------------------------------------
    def add(self, entry: Entry, redactor: Redactor | None = None) -> int:
        """Store one request (redacted first); returns its id."""
        stored = entry.redacted(redactor)
        values = [getattr(stored, name) for name in COLUMNS[1:]]
        values[COLUMNS.index("messages") - 1] = json.dumps(stored.messages) if stored.messages is not None else None
        values[COLUMNS.index("attempts") - 1] = json.dumps(stored.attempts)
        parts = stored.reply_parts
        values[COLUMNS.index("reply_parts") - 1] = json.dumps(parts) if parts else None
        cursor = self._run(
            f"INSERT INTO requests ({', '.join(COLUMNS[1:])}) VALUES ({', '.join('?' * (len(COLUMNS) - 1))})",
            values,
            writing=True,
        )
        entry.id = int(cursor.lastrowid or 0)
        return entry.id

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything added inside is written at once (one commit), or not at all."""
        import sqlite3

        conn = self.open()
        self._run("BEGIN IMMEDIATE", writing=True)
        try:
            yield
            self._run("COMMIT", writing=True)
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def delete(self, ident: str) -> int:
        """Remove one request (a number) or a whole conversation (its id); returns how many rows went."""
        if ident.isdigit():
            return self._run("DELETE FROM requests WHERE id = ?", (int(ident),)).rowcount
        return self._run("DELETE FROM requests WHERE conversation = ?", (ident,)).rowcount

    def clear(self) -> int:
        count = self._run("SELECT count(*) FROM requests").fetchone()[0]
        self._run("DELETE FROM requests")
        self._run("INSERT INTO requests_fts(requests_fts) VALUES ('rebuild')")
        return int(count)

    # --- reading --------------------------------------------------------------------------------------------
    def get(self, request_id: int) -> Entry | None:
        row = self._run("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        return _row_entry(row) if row else None

    def conversation(self, conversation: str) -> list[Entry]:
        rows = self._run("SELECT * FROM requests WHERE conversation = ? ORDER BY id", (conversation,)).fetchall()
        return [_row_entry(r) for r in rows]

    def latest_conversation(self) -> str | None:
        row = self._run("SELECT conversation FROM requests WHERE source = 'chat' ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def list(self, filters: Filters | None = None, limit: int | None = 20) -> list[Entry]:
        where, params = (filters or Filters()).where()
        sql = f"SELECT * FROM requests{where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row_entry(r) for r in self._run(sql, params).fetchall()]

    def iter_all(self, filters: Filters | None = None) -> Iterator[Entry]:
        where, params = (filters or Filters()).where()
        for row in self._run(f"SELECT * FROM requests{where} ORDER BY id", params):
            yield _row_entry(row)

    def search(self, text: str, limit: int | None = 20) -> list[Entry]:
        """Full-text search over prompts and replies (every word must appear), newest first."""
        words = [w for w in text.split() if w]
        if not words:
            return []
        query = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        sql = (
            "SELECT r.* FROM requests_fts f JOIN requests r ON r.id = f.rowid "
            "WHERE requests_fts MATCH ? ORDER BY f.rowid DESC"  # FTS5 walks its rowids backwards: LIMIT stops early
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row_entry(r) for r in self._run(sql, (query,)).fetchall()]

    def rows_for_usage(self, filters: Filters | None = None) -> list[tuple[Any, ...]]:
        """(ts, provider, requested_model, served_model, prompt_tokens, completion_tokens, cost, cost_source,
        outcome) of every request kept by `filters`, oldest first: what `usage` and budgets add up."""
        where, params = (filters or Filters()).where()
        sql = (
            "SELECT ts, provider, requested_model, served_model, prompt_tokens, completion_tokens, cost, "
            f"cost_source, outcome FROM requests{where} ORDER BY ts"
        )
        return [tuple(r) for r in self._run(sql, params).fetchall()]

    def usage_groups(self, filters: Filters | None = None) -> list[tuple[Any, ...]]:
        """Requests added up in SQL by (local day, provider, requested model, served model, cost source,
        outcome): (day, provider, requested, served, cost_source, outcome, requests, prompt_tokens,
        completion_tokens, cost, unknown_cost, with_tokens). For a time window, whole 15-minute slots come from
        `usage_rollup` and only the requests outside them from `requests`: a month of 100 000 requests reads a
        few thousand rows (`usage`, the dashboard)."""
        filters = filters or Filters()
        window = _rollup_window(filters)
        if window is None:  # filters the rollup does not keep (provider, model, outcome, conversation)
            where, params = filters.where()
            return self._usage_sums(_USAGE_OF_REQUESTS + where, params)
        first, last, edges, params = window
        whole = _USAGE_OF_ROLLUP + " WHERE slot >= ?" + (" AND slot < ?" if last is not None else "")
        found = self._usage_sums(whole, [first, *([last] if last is not None else [])])
        found += self._usage_sums(f"{_USAGE_OF_REQUESTS} WHERE {edges}", params)
        merged: dict[tuple[Any, ...], list[Any]] = {}
        for row in found:  # a group can come from both: add them up
            sums = merged.setdefault(row[:6], [0, 0, 0, 0.0, 0, 0])
            for i, value in enumerate(row[6:]):
                sums[i] += value
        return sorted((key + tuple(sums) for key, sums in merged.items()), key=lambda row: row[0])

    def _usage_sums(self, rows: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """`rows` (a SELECT of the usage columns, see `_USAGE_OF_REQUESTS`) added up per day and key in SQL. One
        scan each: a GROUP BY over a UNION ALL of both would materialise it first (about twice as slow)."""
        sql = (
            "SELECT day, provider, requested, served, source, outcome, SUM(n), SUM(pt), SUM(ct), SUM(cost), "
            f"SUM(unknown), SUM(tokens) FROM ({rows}) GROUP BY 1, 2, 3, 4, 5, 6"
        )
        return [tuple(r) for r in self._run(sql, params).fetchall()]

    def spent_since(self, since: float, provider: str | None = None) -> float:
        """USD of known cost since `since` (unix time), overall or for one provider (whole 15-minute slots
        from `usage_rollup`, the requests before the first whole slot from `requests`)."""
        first = math.ceil(since / ROLLUP_SLOT_S)
        mine = " AND provider = ?" if provider is not None else ""
        sql = (
            f"SELECT COALESCE(SUM(cost), 0) FROM (SELECT cost FROM usage_rollup WHERE slot >= ?{mine} "
            f"UNION ALL SELECT cost FROM requests WHERE ts >= ? AND ts < ? AND cost IS NOT NULL{mine})"
        )
        who = [provider] if provider is not None else []
        return float(self._run(sql, [first, *who, since, first * ROLLUP_SLOT_S, *who]).fetchone()[0])


# One request, or one rollup row, as the same columns: what `usage_groups` adds up.
_USAGE_OF_REQUESTS = (
    "SELECT date(ts, 'unixepoch', 'localtime') AS day, provider, requested_model AS requested, "
    "served_model AS served, cost_source AS source, outcome, 1 AS n, IFNULL(prompt_tokens, 0) AS pt, "
    "IFNULL(completion_tokens, 0) AS ct, IFNULL(cost, 0) AS cost, cost IS NULL AS unknown, "
    "(prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL) AS tokens FROM requests"
)
_USAGE_OF_ROLLUP = (
    f"SELECT date(slot * {ROLLUP_SLOT_S}, 'unixepoch', 'localtime') AS day, NULLIF(provider, '') AS provider, "
    "NULLIF(requested_model, '') AS requested, NULLIF(served_model, '') AS served, "
    "NULLIF(cost_source, '') AS source, outcome, requests AS n, prompt_tokens AS pt, completion_tokens AS ct, "
    "cost, unknown_cost AS unknown, with_tokens AS tokens FROM usage_rollup"
)


def _rollup_window(filters: Filters) -> tuple[int, int | None, str, list[Any]] | None:
    """For a time window alone: (first whole slot, the slot it ends before or None, the condition that picks
    the requests outside whole slots, its parameters); None when other filters apply."""
    if filters.provider or filters.model or filters.outcome or filters.conversation:
        return None
    since = filters.since if filters.since is not None else 0.0
    first = math.ceil(since / ROLLUP_SLOT_S)
    if filters.until is None:
        return first, None, "ts >= ? AND ts < ?", [since, first * ROLLUP_SLOT_S]
    last = max(math.floor(filters.until / ROLLUP_SLOT_S), first)
    edges = "(ts >= ? AND ts < ?) OR (ts >= ? AND ts < ?)"
    if last == first:  # no whole slot inside: every request of the window from `requests`
        return first, last, "ts >= ? AND ts < ?", [since, filters.until]
    return first, last, edges, [since, first * ROLLUP_SLOT_S, last * ROLLUP_SLOT_S, filters.until]


def prior_messages(turns: list[Entry]) -> list[dict[str, str]]:
    """The user/assistant messages of earlier turns, oldest first (failed turns without a reply left out)."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        if not turn.reply:
            continue
        messages.append({"role": "user", "content": turn.prompt})
        messages.append({"role": "assistant", "content": turn.reply})
    return messages


def parse_when(text: str, now: float | None = None) -> float:
    """`7d`, `12h`, `30m`, `2w` (that long ago) or a local date `2026-11-01` / `2026-11-01T08:00` -> unix time.
    ValueError with a one-line message otherwise."""
    import re
    from datetime import datetime

    now = time.time() if now is None else now
    value = text.strip()
    match = re.fullmatch(r"(\d+)\s*([mhdw])", value)
    if match:
        seconds = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[match.group(2)]
        return now - int(match.group(1)) * seconds
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use 7d, 12h, or a date like 2026-11-01)") from None
