"""core/parallel.py: the one runner for probes and checks. Results in job order, errors kept, a deadline that
returns to the caller while a job still hangs, and no hung thread ever holding up the process's exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exobridge.core import parallel
from exobridge.core.parallel import Deadline, Job, JobTimedOut

pytestmark = pytest.mark.timeout(20)


def test_results_come_back_in_job_order_whatever_order_they_finish_in() -> None:
    first_may_finish = threading.Event()

    def slow() -> str:
        first_may_finish.wait(10)
        return "first"

    def fast() -> str:
        first_may_finish.set()
        return "second"

    outcomes = parallel.run_all([Job("slow", slow), Job("fast", fast)], timeout=10)
    assert [o.value for o in outcomes] == ["first", "second"]
    assert [o.name for o in outcomes] == ["slow", "fast"]
    assert all(o.ok and o.finished and not o.timed_out for o in outcomes)


def test_a_job_that_raises_gives_its_error_and_the_others_still_finish() -> None:
    def broken() -> int:
        raise ValueError("bad setting")

    outcomes = parallel.run_all([Job("broken", broken), Job("fine", lambda: 7)], timeout=10)
    assert outcomes[0].finished and not outcomes[0].ok
    assert isinstance(outcomes[0].error, ValueError)
    with pytest.raises(ValueError, match="bad setting"):
        outcomes[0].value_or_raise()
    assert outcomes[1].value_or_raise() == 7


def test_a_hung_job_is_reported_at_the_deadline_and_left_on_a_daemon_thread() -> None:
    never = threading.Event()
    try:
        outcomes = parallel.run_all(
            [Job("hung", lambda: never.wait()), Job("quick", lambda: "done")], timeout=0.2, thread_prefix="t-hung"
        )
        hung, quick = outcomes
        assert hung.timed_out and not hung.ok and hung.error is None
        assert quick.value == "done"
        with pytest.raises(JobTimedOut, match=r"hung did not finish within 0\.2 s"):
            hung.value_or_raise()
        left = [t for t in threading.enumerate() if t.name == "t-hung-hung"]
        assert left and all(t.daemon for t in left)
    finally:
        never.set()


def test_plain_callables_and_run_each_are_accepted() -> None:
    outcomes = parallel.run_each(lambda n: n * n, [1, 2, 3], timeout=10)
    assert [o.value for o in outcomes] == [1, 4, 9]
    assert [o.name for o in outcomes] == ["1", "2", "3"]

    def named_function() -> str:
        return "x"

    assert parallel.run_all([named_function], timeout=None)[0].name == "named_function"
    assert parallel.run_all([], timeout=1) == []


def test_a_shared_deadline_that_has_passed_reports_unfinished_jobs_without_waiting() -> None:
    never = threading.Event()
    try:
        spent = Deadline(0)
        assert spent.expired and spent.remaining() == 0
        outcomes = parallel.run_all([Job("hung", lambda: never.wait())], timeout=None, deadline=spent)
        assert outcomes[0].timed_out
        assert Deadline(None).remaining() is None and not Deadline(None).expired
    finally:
        never.set()


def test_a_process_whose_job_hangs_forever_still_exits() -> None:
    """Only a process shows this: a ThreadPoolExecutor joins its workers at exit and would never end here."""
    script = textwrap.dedent(
        """
        import threading
        from exobridge.core import parallel
        outcomes = parallel.run_all([parallel.Job("hung", threading.Event().wait)], timeout=0.1)
        print("timed out" if outcomes[0].timed_out else "finished", flush=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=15)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "timed out"


@settings(max_examples=25, deadline=None)
@given(plan=st.lists(st.sampled_from(["value", "raise", "hang"]), max_size=6))
def test_any_mix_of_jobs_gives_one_outcome_each_in_order(plan: list[str]) -> None:
    """Values, errors and hung jobs in any order: one Outcome per job, in job order, each what its job did."""
    release = threading.Event()

    def job(index: int, what: str):
        def run() -> int:
            if what == "raise":
                raise RuntimeError(f"job {index}")
            if what == "hang":
                release.wait(30)
            return index

        return Job(f"j{index}", run)

    try:
        outcomes = parallel.run_all([job(i, w) for i, w in enumerate(plan)], timeout=0.05 if "hang" in plan else 10)
    finally:
        release.set()
    assert [o.name for o in outcomes] == [f"j{i}" for i in range(len(plan))]
    for index, (what, outcome) in enumerate(zip(plan, outcomes, strict=True)):
        if what == "hang":
            assert outcome.timed_out and outcome.error is None
        elif not outcome.finished:  # a quick job may lose the race against a 50 ms deadline on a busy machine
            assert "hang" in plan
        elif what == "raise":
            assert isinstance(outcome.error, RuntimeError) and outcome.value is None
        else:
            assert outcome.value == index and outcome.ok


def test_daemon_pool_reuses_an_idle_thread_and_queues_beyond_its_limit():
    import threading

    from exobridge.core.parallel import DaemonPool

    pool = DaemonPool(limit=2, name="test-pool")
    seen: list[str] = []
    done = threading.Event()

    def job() -> None:
        seen.append(threading.current_thread().name)
        done.set()

    for _ in range(3):  # one after the other: the same worker each time
        done.clear()
        pool.submit(job)
        assert done.wait(5)
    assert len(set(seen)) == 1 and seen[0].startswith("test-pool-")
    assert threading.current_thread().daemon is False and all(
        t.daemon for t in threading.enumerate() if t.name.startswith("test-pool-")
    )

    release = threading.Event()
    started = threading.Semaphore(0)
    finished: list[int] = []
    ended = threading.Semaphore(0)

    def blocked(n: int) -> None:
        started.release()
        release.wait(5)
        finished.append(n)
        ended.release()

    for n in range(3):  # two run at once; the third waits for a free worker, then runs
        pool.submit(lambda n=n: blocked(n))
    assert started.acquire(timeout=5) and started.acquire(timeout=5)
    assert not started.acquire(timeout=0.2)  # the limit holds the third back
    release.set()
    assert started.acquire(timeout=5)
    assert all(ended.acquire(timeout=5) for _ in range(3))
    assert sorted(finished) == [0, 1, 2]
    assert len([t for t in threading.enumerate() if t.name.startswith("test-pool-")]) == 2
