"""The one concurrency runner for probes, model lists and doctor checks: daemon threads and a wall-clock deadline.

`run_all(jobs, timeout=...)` starts every job on its own daemon thread at once and collects results until the
deadline; a job still running then is reported as timed out (`Outcome.finished` is False) and LEFT BEHIND:
nothing ever joins it. Daemon threads never hold up the interpreter's exit, so a check stuck in DNS or on a
server that drips one byte per second costs the caller the deadline, never more (a ThreadPoolExecutor's
workers are joined at exit, which is how `doctor` used to hang after saying "did not finish").

Results come back in job order, whatever order they finish in. A job that raises gives an Outcome carrying the
exception (`error`), it never breaks the others; `Outcome.value_or_raise()` re-raises it for callers that want
that. Ctrl-C while waiting propagates to the caller at once (the waits are interruptible).

The deadline bounds the caller's wait, not the work: a job that overruns keeps its thread until it ends on its
own, so jobs must still carry their own network deadlines (core/http.py) to free their sockets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741  (item type of run_each)


class JobTimedOut(Exception):
    """Raised by `Outcome.value_or_raise()` for a job that had not finished by the deadline."""

    def __init__(self, name: str, timeout: float | None) -> None:
        limit = "" if timeout is None else f" within {timeout:g} s"
        super().__init__(f"{name} did not finish{limit}")
        self.name = name
        self.timeout = timeout


@dataclass(frozen=True)
class Job(Generic[T]):
    """One unit of work. `name` names the thread and the job in a timeout."""

    name: str
    run: Callable[[], T]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What became of one job: a value, an error, or not finished by the deadline."""

    name: str
    finished: bool
    value: T | None = None
    error: BaseException | None = None
    seconds: float = 0.0  # how long the job ran (up to the deadline when it did not finish)
    timeout: float | None = None  # the deadline the run was given, for messages

    @property
    def ok(self) -> bool:
        return self.finished and self.error is None

    @property
    def timed_out(self) -> bool:
        return not self.finished

    @property
    def ms(self) -> int:
        return int(self.seconds * 1000)

    def value_or_raise(self) -> T:
        """The value; re-raises the job's exception, or `JobTimedOut` when it did not finish."""
        if not self.finished:
            raise JobTimedOut(self.name, self.timeout)
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class Deadline:
    """A wall-clock deadline on the monotonic clock, shared by steps that must end together."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never negative); None for no deadline."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


class _Slot:
    __slots__ = ("done", "error", "seconds", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None
        self.seconds = 0.0


def _work(slot: _Slot, run: Callable[[], object]) -> None:
    started = time.monotonic()
    try:
        slot.value = run()
    except BaseException as exc:  # handed to the caller through the Outcome, never lost in a thread
        slot.error = exc
    finally:
        slot.seconds = time.monotonic() - started
        slot.done.set()


def run_all(
    jobs: Sequence[Job[T]] | Sequence[Callable[[], T]],
    *,
    timeout: float | None,
    deadline: Deadline | None = None,
    thread_prefix: str = "exobridge",
) -> list[Outcome[T]]:
    """Run every job at once on daemon threads; one Outcome per job, in job order.

    `timeout` is the wall-clock bound in seconds from the call (None: wait for all). `deadline`, when given,
    is used instead of `timeout` (so nested runs can share one). No thread is ever joined past the deadline.
    """
    named = [job if isinstance(job, Job) else Job(getattr(job, "__name__", "job"), job) for job in jobs]
    limit = deadline if deadline is not None else Deadline(timeout)
    bound = limit.seconds
    started = time.monotonic()
    slots = [_Slot() for _ in named]
    for slot, job in zip(slots, named, strict=True):
        thread = threading.Thread(target=_work, args=(slot, job.run), daemon=True, name=f"{thread_prefix}-{job.name}")
        thread.start()
    outcomes: list[Outcome[T]] = []
    for slot, job in zip(slots, named, strict=True):
        if not slot.done.wait(limit.remaining()):
            ran = time.monotonic() - started
            outcomes.append(Outcome(job.name, finished=False, seconds=ran, timeout=bound))
            continue
        outcomes.append(
            Outcome(
                job.name,
                finished=True,
                value=slot.value,  # type: ignore[arg-type]
                error=slot.error,
                seconds=slot.seconds,
                timeout=bound,
            )
        )
    return outcomes


def run_each(
    function: Callable[[I], T],
    items: Iterable[I],
    *,
    timeout: float | None,
    deadline: Deadline | None = None,
    name: Callable[[I], str] = str,
    thread_prefix: str = "exobridge",
) -> list[Outcome[T]]:
    """`function(item)` for every item at once (like `pool.map`, but with a deadline and no join)."""
    jobs = [Job(name(item), _bind(function, item)) for item in items]
    return run_all(jobs, timeout=timeout, deadline=deadline, thread_prefix=thread_prefix)


def _bind(function: Callable[[I], T], item: I) -> Callable[[], T]:
    return lambda: function(item)


class DaemonPool:
    """Daemon worker threads reused from job to job, for work started per request (serve's routes, the send
    that a wall-clock deadline waits on): starting a thread per job cost more than the job under load.

    Daemon threads, so a job stuck on a stalled socket never holds up the interpreter's exit; nothing joins
    them. Up to `limit` threads run at once; beyond that, jobs wait for a free one.
    """

    def __init__(self, limit: int = 1024, name: str = "exobridge-worker") -> None:
        import os

        self._limit = limit
        self._name = name
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked child has none of the parent's threads

    def _reset(self) -> None:
        import queue

        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    def submit(self, job: Callable[[], object]) -> None:
        """Run `job` on a worker thread; it must not raise (catch inside, hand results back yourself)."""
        with self._lock:
            if self._idle:
                self._idle -= 1  # that idle worker takes this job
            elif self._threads < self._limit:
                self._threads += 1
                name = f"{self._name}-{self._threads}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                self._idle += 1


WORKERS = DaemonPool(name="exobridge-send")  # core/http.py's deadline-bound sends
READERS = DaemonPool(name="exobridge-stream")  # core/reply.py's stream readers (QueuedBody)
