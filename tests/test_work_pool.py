"""The one work pool (run/pool.py): `jobs` at a time, a flat list or a tree walk, every item
once, results in the order the items were added, the first error (or a Ctrl-C) stops new
starts and is raised in the caller's thread. No sleeps: events and barriers order the
threads; every wait has a generous bound, so a broken pool fails instead of hanging."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.run import Stopped, WorkPool

from .conftest import scaled

BOUND = 60.0  # seconds: only a broken pool ever waits this long


class Boom(Exception):
    """The error an item raises in these tests."""


@dataclass
class Watch:
    """What the items did: who started, in which order, how many at once at most."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started: list[Any] = field(default_factory=list)
    running: int = 0
    most: int = 0

    def enter(self, item: object) -> None:
        with self.lock:
            self.started.append(item)
            self.running += 1
            self.most = max(self.most, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


def test_a_flat_list_gives_every_result_in_the_order_of_the_items() -> None:
    watch = Watch()

    def square(n: int) -> int:
        watch.enter(n)
        watch.leave()
        return n * n

    items = list(range(50))
    assert WorkPool(square, 3).run(items) == [(n, n * n) for n in items]
    assert sorted(watch.started) == items and watch.most <= 3


@pytest.mark.parametrize("jobs", [1, 2, 4])
def test_exactly_jobs_items_run_at_once(jobs: int) -> None:
    """A barrier of `jobs` parties passes only when `jobs` items run at once; it breaks (and
    the item fails) if one more ever joins it."""
    barrier = threading.Barrier(jobs, timeout=BOUND)
    watch = Watch()

    def meet(n: int) -> int:
        watch.enter(n)
        try:
            return barrier.wait()
        finally:
            watch.leave()

    ended = WorkPool(meet, jobs).run(range(3 * jobs))
    assert [n for n, _ in ended] == list(range(3 * jobs))
    assert watch.most == jobs


def test_a_tree_walk_with_one_job_goes_breadth_first() -> None:
    tree = {"a": ["b", "c"], "b": ["d"], "c": ["e", "f"], "d": [], "e": [], "f": [], "g": []}
    started: list[str] = []

    def visit(name: str) -> str:
        started.append(name)
        return name.upper()

    ended = WorkPool(visit, 1, then=lambda name, _: tree[name]).run(["a", "g"])
    assert started == ["a", "g", "b", "c", "d", "e", "f"]
    assert ended == [(name, name.upper()) for name in started]


def test_an_item_added_by_a_running_item_starts_before_what_is_added_after_it() -> None:
    """The submodules' early fetch: the parent adds it while it runs; the child, added once the
    parent is done, waits for it. With one worker this ends only if the early one starts
    first."""
    early_done = threading.Event()

    def work(name: str) -> str:
        if name == "parent":
            pool.add("early")
        elif name == "early":
            early_done.set()
        elif name == "child":
            assert early_done.wait(BOUND)
        return name

    pool: WorkPool[str, str] = WorkPool(
        work, 1, then=lambda name, _: ["child"] if name == "parent" else []
    )
    assert [name for name, _ in pool.run(["parent"])] == ["parent", "early", "child"]


def test_the_first_error_stops_new_starts_and_the_running_items_notice() -> None:
    """Two run (b waits for the stop; a fails), c and d never start; b's `Stopped` is not an
    error of its own; the error is raised in the caller's thread after b ended."""
    watch = Watch()
    b_ended = threading.Event()

    def work(name: str) -> str:
        watch.enter(name)
        if name == "a":
            raise Boom(name)
        if name == "b":
            try:
                assert pool.stopping.wait(BOUND)
                pool.check()
            finally:
                b_ended.set()
        return name

    pool: WorkPool[str, str] = WorkPool(work, 2)
    with pytest.raises(Boom, match="a"):
        pool.run(["b", "a", "c", "d"])
    assert sorted(map(str, watch.started)) == ["a", "b"]
    assert pool.skipped == ["c", "d"]
    assert b_ended.is_set() and not pool.interrupted.is_set()


def test_items_added_after_an_error_are_skipped_not_dropped() -> None:
    """What `then` or a running item adds once the pool stopped is in `skipped`."""
    release = threading.Event()

    def work(name: str) -> str:
        if name == "fails":
            raise Boom(name)
        if name == "slow":
            assert pool.stopping.wait(BOUND)
            pool.add("from-the-worker")
            release.set()
        return name

    pool: WorkPool[str, str] = WorkPool(work, 2, then=lambda name, _: [f"after-{name}"])
    with pytest.raises(Boom):
        pool.run(["slow", "fails"])
    assert release.is_set()
    assert sorted(pool.skipped) == ["after-slow", "from-the-worker"]


def test_an_error_in_then_stops_the_pool_and_is_raised() -> None:
    def then(name: str, _: str) -> list[str]:
        raise Boom(name)

    pool = WorkPool(lambda name: name, 1, then=then)
    with pytest.raises(Boom, match="a"):
        pool.run(["a", "b"])
    assert pool.skipped == ["b"]


def test_stopped_from_an_item_while_the_pool_runs_on_is_an_error() -> None:
    """A `Stopped` nobody asked for is not swallowed."""

    def work(name: str) -> str:
        raise Stopped

    with pytest.raises(Stopped):
        WorkPool(work, 2).run(["a"])


def _ctrl_c_pool(
    started_b: threading.Event, ended: list[str], interrupt: Callable[[], None]
) -> tuple[WorkPool[str, str], list[str]]:
    """Two items run (a, b), c waits; `interrupt` is called by a once b runs. The running
    ones wait for `interrupted` (`ended` names those that saw it), then stop."""
    hooks: list[str] = []

    def work(name: str) -> str:
        if name == "b":
            started_b.set()
        if name == "a":
            assert started_b.wait(BOUND)
            interrupt()
        if pool.interrupted.wait(BOUND):  # (only a broken pool lets this time out)
            ended.append(name)
        pool.check()
        return name

    pool: WorkPool[str, str] = WorkPool(
        work, 2, on_interrupt=lambda: hooks.append("interrupted"), name="ctrl-c"
    )
    return pool, hooks


def test_a_ctrl_c_in_the_callers_thread_stops_everything_and_is_raised_again() -> None:
    """The Ctrl-C lands in `then`, in the caller's thread, deterministically: `interrupted` is
    set, `on_interrupt` called once, the running item notices, the waiting ones are skipped."""
    ended: list[str] = []
    b_runs = threading.Event()

    def then(name: str, _: str) -> list[str]:
        assert b_runs.wait(BOUND)
        raise KeyboardInterrupt

    hooks: list[str] = []

    def work(name: str) -> str:
        if name == "b":
            b_runs.set()
            try:
                assert pool.interrupted.wait(BOUND)
                pool.check()
            finally:
                ended.append(name)
        return name

    pool: WorkPool[str, str] = WorkPool(
        work, 2, then=then, on_interrupt=lambda: hooks.append("interrupted")
    )
    with pytest.raises(KeyboardInterrupt):
        pool.run(["a", "b", "c", "d"])
    assert hooks == ["interrupted"] and pool.interrupted.is_set() and pool.stopping.is_set()
    assert ended == ["b"]  # waited for (no grace given)
    assert pool.skipped == ["c", "d"]


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread, as in a terminal."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("sigint_default")
def test_a_real_sigint_wakes_the_waiting_caller_and_stops_the_pool() -> None:
    """A real SIGINT, sent to the main thread while it sleeps waiting for the items (item a
    sends it once b runs): it wakes up, stops the pool and raises the KeyboardInterrupt."""
    ended: list[str] = []
    main = threading.main_thread().ident
    assert main is not None
    pool, hooks = _ctrl_c_pool(
        threading.Event(), ended, lambda: signal.pthread_kill(main, signal.SIGINT)
    )
    with pytest.raises(KeyboardInterrupt):
        pool.run(["a", "b", "c"])
    assert hooks == ["interrupted"]
    assert sorted(ended) == ["a", "b"] and pool.skipped == ["c"]


def test_after_a_ctrl_c_an_item_stuck_past_the_grace_is_left_behind() -> None:
    """The downloads' case: one waiting on a stalled server must not hold up a Ctrl-C; its
    thread is a daemon and ends when it can."""
    stuck = threading.Event()
    release = threading.Event()

    def work(name: str) -> str:
        if name == "stuck":
            stuck.set()
            assert release.wait(BOUND)
        return name

    def then(name: str, _: str) -> list[str]:
        assert stuck.wait(BOUND)
        raise KeyboardInterrupt

    pool: WorkPool[str, str] = WorkPool(work, 2, then=then, grace=0.0, name="grace-test")
    with pytest.raises(KeyboardInterrupt):
        pool.run(["quick", "stuck"])
    left = [thread for thread in threading.enumerate() if thread.name.startswith("grace-test-")]
    assert len(left) == 1 and left[0].daemon and left[0].is_alive()
    release.set()
    left[0].join(BOUND)
    assert not left[0].is_alive()


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        WorkPool(lambda n: n, 0)
    pool: WorkPool[int, int] = WorkPool(lambda n: n, 1)
    assert pool.run([1]) == [(1, 1)]
    with pytest.raises(RuntimeError, match="ended"):
        pool.add(2)
    with pytest.raises(RuntimeError, match="runs once"):
        pool.run([3])


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[int], dict[int, list[int]], dict[int, str]]:
    """Roots, children of each node, and for each node how its children come (`then` or
    added by the node's own work) or whether it fails."""
    size = draw(st.integers(1, 40))
    roots = draw(st.integers(1, size))
    children: dict[int, list[int]] = {node: [] for node in range(size)}
    for node in range(roots, size):
        children[draw(st.integers(0, node - 1))].append(node)
    how = {node: draw(st.sampled_from(["then", "then", "add", "add", "fail"])) for node in children}
    return list(range(roots)), children, how


@settings(
    max_examples=scaled(60, 400),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tree=trees(), jobs=st.integers(1, 4), failing=st.booleans())
def test_a_random_tree_walk_does_every_item_once(
    tree: tuple[list[int], dict[int, list[int]], dict[int, str]], jobs: int, failing: bool
) -> None:
    """Every node done exactly once and in the results in the order it was added; never
    more than `jobs` at once; with failures, one failing node's error is raised, and every
    node that was added either ran or is in `skipped`, never both."""
    roots, children, how = tree
    if not failing:
        how = {node: "add" if kind == "fail" else kind for node, kind in how.items()}
    watch = Watch()
    added: list[int] = list(roots)

    def work(node: int) -> int:
        watch.enter(node)
        try:
            if how[node] == "add":
                for child in children[node]:
                    added.append(child)
                    pool.add(child)
            if how[node] == "fail":
                raise Boom(node)
            return -node
        finally:
            watch.leave()

    def then(node: int, result: int) -> list[int]:
        assert result == -node
        more = children[node] if how[node] == "then" else []
        added.extend(more)
        return more

    pool: WorkPool[int, int] = WorkPool(work, jobs, then=then)
    fails = {node for node in children if how[node] == "fail"}
    try:
        ended = pool.run(roots)
    except Boom as error:
        assert error.args[0] in fails
        started: list[int] = watch.started
        assert sorted(started + pool.skipped) == sorted(added)
        if jobs == 1:  # nothing starts once an item failed
            first = next(i for i, node in enumerate(started) if node in fails)
            assert started[first + 1 :] == []
    else:
        assert not fails
        order = [node for node, _ in ended]
        assert sorted(order) == sorted(watch.started) == sorted(added)
        assert sorted(order) == list(range(len(children)))
        assert all(result == -node for node, result in ended)
        assert order[: len(roots)] == roots and pool.skipped == []
        place = {node: i for i, node in enumerate(order)}
        for parent, below in children.items():  # added after their parent, in their order
            assert [place[child] for child in below] == sorted(place[child] for child in below)
            assert all(place[child] > place[parent] for child in below)
        if jobs == 1:
            assert order == watch.started
    assert watch.most <= jobs and watch.running == 0
