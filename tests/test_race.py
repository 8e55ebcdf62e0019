"""Race mode (goheap.race): the classic races are reported in Go's format, their synchronised
versions are not, and the options behave as GORACE's.

Python threads switch only between bytecodes, and a race needs two accesses in a given
order, so each test fixes the interleaving with :func:`in_turns`: the threads take turns
through a ``threading.Condition``, which the detector cannot see (only goheap.race's
primitives create happens-before), so the turns force an order without ordering anything.
"""

from __future__ import annotations

import os
import re
import threading

import numba
import pytest

import goheap
from heaptools import race_heap
from goheap import nb, race
from goheap.race import Chan, Mutex, RaceOptions, RWMutex, WaitGroup

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

STACK_FRAME = r"  \S+\(\)\n      .+:\d+\n"




def in_turns(steps, thread=race.Thread) -> list[BaseException]:
    """Run ``steps`` [(thread number, fn), ...] in that order, each on its thread; returns the errors raised.

    Threads are goheap.race.Thread (start and join order the test's setup and checks with
    the steps) unless another class is given.
    """
    nthreads = max(t for t, _ in steps) + 1
    cond = threading.Condition()
    turn = [0]
    errors: list[BaseException] = []

    def body(me: int) -> None:
        for i, (t, fn) in enumerate(steps):
            if t != me:
                continue
            with cond:
                cond.wait_for(lambda i=i: turn[0] == i)
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                errors.append(exc)
            with cond:
                turn[0] = i + 1
                cond.notify_all()

    threads = [thread(target=body, args=(k,)) for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


# ================================================================ the classic races


def test_unsynchronised_counter_is_reported_in_gos_format() -> None:
    with race_heap() as h:
        p = h.alloc(16)

        def increment() -> None:
            h.store_word(p, 1, h.load_word(p, 1) + 1)

        assert in_turns([(0, increment), (1, increment)]) == []
        assert len(h.race.reports) == 1
        r = h.race.reports[0]
        assert (r.kind, r.previous_kind) == ("read", "write")
        assert r.address == p + 8
        assert r.block == (p, 16, 2)
        assert r.goroutine != r.previous_goroutine and 1 not in (r.goroutine, r.previous_goroutine)
        assert r.stack[0].function.endswith("increment") and r.previous_stack[0].function.endswith("increment")
        pattern = (
            r"==================\n"
            r"WARNING: DATA RACE\n"
            rf"Read at 0x{p + 8:012x} by goroutine (\d+):\n"
            rf"  \S*test_race\.test_unsynchronised_counter_is_reported_in_gos_format\.<locals>\.increment\(\)\n"
            rf"      {re.escape(__file__)}:\d+\n"
            rf"(?:{STACK_FRAME})*"
            r"\n"
            rf"Previous write at 0x{p + 8:012x} by goroutine (\d+):\n"
            rf"  \S*increment\(\)\n      \S+:\d+\n(?:{STACK_FRAME})*"
            r"\n"
            rf"Heap block of size 16 at 0x{p:012x} allocated by goroutine 1:\n"
            rf"  \S*test_race\.test_unsynchronised_counter_is_reported_in_gos_format\(\)\n      \S+:\d+\n(?:{STACK_FRAME})*"
            r"  \[size class 2 \(16-byte blocks\); the race is at offset 8\]\n"
            r"\n"
            r"Goroutine \1 \((running|finished)\) created at:\n"
            rf"  \S*in_turns\(\)\n      \S+:\d+\n(?:{STACK_FRAME})*"
            r"\n"
            r"Goroutine \2 \((running|finished)\) created at:\n"
            rf"(?:{STACK_FRAME})+"
            r"==================\n$"
        )
        assert re.match(pattern, r.text), r.text


def test_the_same_race_is_reported_once() -> None:
    with race_heap() as h:
        p = h.alloc(8)

        def increment() -> None:
            h.store_word(p, 0, h.load_word(p, 0) + 1)

        in_turns([(k % 2, increment) for k in range(20)])
        assert len(h.race.reports) == 1
        assert h.race.races > 1
        assert h.load_word(p, 0) == 20


def test_counter_under_a_mutex_is_not_reported() -> None:
    with race_heap() as h:
        p = h.alloc(8)
        mu = Mutex()

        def increment() -> None:
            with mu:
                h.store_word(p, 0, h.load_word(p, 0) + 1)

        in_turns([(k % 3, increment) for k in range(30)])
        assert h.race.reports == []
        assert h.load_word(p, 0) == 30


def test_publish_without_a_lock_is_reported() -> None:
    with race_heap() as h:
        slot = h.roots.add(0)  # a global variable
        made = []

        def publish() -> None:
            obj = h.alloc(32)
            h.store_word(obj, 0, 7)
            h.store_word(obj, 3, 9)
            h.roots.set(slot, obj)
            made.append(obj)

        def consume() -> None:
            obj = h.roots.get(slot)
            assert h.load_word(obj, 0) + h.load_word(obj, 3) == 16

        assert in_turns([(0, publish), (1, consume)]) == []
        reports = h.race.reports
        assert [r.global_handle for r in reports] == [slot, None, None]
        assert re.search(rf"Location is global 'roots\[{slot}\]' of size 8 at 0x[0-9a-f]{{12}}\n", reports[0].text)
        obj = made[0]
        assert [(r.address, r.kind, r.previous_kind) for r in reports[1:]] == [(obj, "read", "write"), (obj + 24, "read", "write")]
        assert reports[1].block == (obj, 32, 3)


@pytest.mark.parametrize("capacity", [0, 1, 4])
def test_publish_through_a_channel_is_not_reported(capacity: int) -> None:
    with race_heap() as h:
        ch = Chan(capacity)
        got = []

        def producer() -> None:
            for i in range(6):
                obj = h.alloc(16)
                h.store_word(obj, 0, i)
                ch.send(obj)
            ch.close()

        def consumer() -> None:
            for obj in ch:
                got.append(h.load_word(obj, 0))
                h.store_word(obj, 1, 1)

        threads = [race.go(producer), race.go(consumer)]
        for t in threads:
            t.join()
        assert got == list(range(6))
        assert h.race.reports == []


def test_use_after_free_across_threads_is_reported() -> None:
    with race_heap() as h:
        p = h.alloc(48)
        h.store_word(p, 2, 5)

        def free() -> None:
            h.free(p)

        def use() -> None:
            h.load_word(p, 2)

        [refused] = in_turns([(0, free), (1, use)])  # the heap refuses the access, and the race is reported
        assert isinstance(refused, goheap.AddressError) and f"{p:#x}" in str(refused)
        [r] = h.race.reports
        assert (r.kind, r.previous_kind, r.address) == ("read", "free", p + 16)
        assert r.previous_stack[0].function == "goheap.Heap.free"
        assert r.previous_stack[1].function.endswith("free")
        assert re.search(rf"Previous write at 0x{p + 16:012x} by goroutine \d+:\n  goheap\.Heap\.free\(\)\n", r.text)
        assert re.search(rf"Heap block of size 48 at 0x{p:012x} allocated by goroutine 1:\n", r.text)


def test_use_after_free_in_the_same_thread_is_reported() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        h.free(p)
        with pytest.raises(goheap.AddressError, match=f"{p:#x} is not in an allocated block"):
            h.store_word(p, 1, 3)
        [r] = h.race.reports
        assert (r.kind, r.previous_kind, r.goroutine, r.previous_goroutine) == ("write", "free", 1, 1)


def test_free_racing_with_an_earlier_access_is_reported() -> None:
    with race_heap() as h:
        p = h.alloc(16)

        def write() -> None:
            h.store_word(p, 1, 1)

        def free() -> None:
            h.free(p)

        in_turns([(0, write), (1, free)])
        [r] = h.race.reports
        assert (r.kind, r.previous_kind, r.address) == ("free", "write", p + 8)
        assert re.search(rf"Write at 0x{p + 8:012x} by goroutine \d+:\n  goheap\.Heap\.free\(\)\n", r.text)


def test_free_after_a_channel_handoff_is_not_reported() -> None:
    with race_heap() as h:
        ch = Chan(1)
        done = Chan()

        def owner() -> None:
            p = h.alloc(64)
            h.store_word(p, 7, 1)
            ch.send(p)
            done.recv()

        def user() -> None:
            p = ch.recv()
            h.store_word(p, 7, h.load_word(p, 7) + 1)
            h.free(p)
            done.send(None)

        for t in [race.go(owner), race.go(user)]:
            t.join()
        assert h.race.reports == []


# ================================================================ what orders accesses


def test_waitgroup_orders_the_workers_before_wait() -> None:
    with race_heap() as h:
        p = h.alloc(64)
        wg = WaitGroup()

        def worker(i: int) -> None:
            h.store_word(p, i, i * i)
            wg.done()

        wg.add(8)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]  # joined by wg, not join
        for t in threads:
            t.start()
        wg.wait()
        assert [h.load_word(p, i) for i in range(8)] == [i * i for i in range(8)]
        for t in threads:
            t.join()
        assert h.race.reports == []


def test_thread_start_and_join_order_accesses() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        h.store_word(p, 0, 1)
        t = race.go(lambda: h.store_word(p, 0, h.load_word(p, 0) + 1))
        t.join()
        assert h.load_word(p, 0) == 2
        assert h.race.reports == []


def test_plain_threading_join_is_invisible_to_the_detector() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        t = threading.Thread(target=lambda: h.store_word(p, 0, 1))
        t.start()
        t.join()
        h.load_word(p, 0)
        assert len(h.race.reports) == 1


def test_a_collection_is_a_full_barrier() -> None:
    with race_heap(gcpercent=100) as h:
        p = h.alloc(16)
        h.roots.add(p)

        def write() -> None:
            h.store_word(p, 0, 1)

        def read() -> None:
            h.load_word(p, 0)

        in_turns([(0, write), (0, h.gc), (1, read)])
        assert h.race.reports == []
        in_turns([(0, write), (1, read)])
        assert len(h.race.reports) == 1


def test_rwmutex_orders_writers_before_readers() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        rw = RWMutex()

        def write() -> None:
            with rw:
                h.store_word(p, 0, h.load_word(p, 0) + 1)

        def read() -> None:
            with rw.reader():
                h.load_word(p, 0)

        in_turns([(0, write), (1, read), (2, read), (1, write), (2, read), (0, write)])
        assert h.race.reports == []


def test_a_write_after_unordered_reads_names_a_reader() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        h.store_word(p, 0, 1)
        mu = Mutex()
        readers: list[int] = []

        def read_then_signal() -> None:
            h.load_word(p, 0)
            readers.append(h.race._goroutine())
            mu.lock()
            mu.unlock()

        def read() -> None:
            h.load_word(p, 0)  # shared with the read above, ordered with nothing
            readers.append(h.race._goroutine())

        def write() -> None:
            with mu:
                h.store_word(p, 0, 2)

        in_turns([(0, read_then_signal), (1, read), (2, write)])
        [r] = h.race.reports
        assert (r.kind, r.previous_kind, r.previous_goroutine) == ("write", "read", readers[1])


def test_the_primitives_order_accesses_in_every_race_mode_heap() -> None:
    with race_heap() as a, race_heap() as b, goheap.Heap(arena_size=64 << 20) as plain:
        pa, pb, pp = a.alloc(8), b.alloc(8), plain.alloc(8)
        mu = Mutex()

        def increment() -> None:
            with mu:
                for h, p in ((a, pa), (b, pb), (plain, pp)):
                    h.store_word(p, 0, h.load_word(p, 0) + 1)

        in_turns([(k % 2, increment) for k in range(6)])
        assert a.race.reports == [] and b.race.reports == []
        assert a.load_word(pa, 0) == b.load_word(pb, 0) == plain.load_word(pp, 0) == 6
        in_turns([(0, lambda: a.store_word(pa, 0, 1)), (1, lambda: a.load_word(pa, 0))])
        assert len(a.race.reports) == 1 and b.race.reports == []


# ================================================================ options


def test_halt_on_error_raises_before_the_access() -> None:
    with race_heap(race_options=RaceOptions(halt_on_error=True, log_path="stdout")) as h:
        p = h.alloc(16)
        h.store_word(p, 0, 1)

        def write() -> None:
            h.store_word(p, 0, 2)

        [exc] = in_turns([(0, write)], thread=threading.Thread)
        assert isinstance(exc, goheap.RaceError)
        assert str(exc).startswith("==================\nWARNING: DATA RACE\nWrite at ")
        assert h.load_word(p, 0) == 1


def test_log_path_writes_the_report_to_a_file(tmp_path, capsys) -> None:
    prefix = tmp_path / "race"
    with race_heap(race_options=RaceOptions(log_path=str(prefix))) as h:
        p = h.alloc(16)
        in_turns([(0, lambda: h.store_word(p, 0, 1)), (1, lambda: h.store_word(p, 0, 2))])
    text = (tmp_path / f"race.{os.getpid()}").read_text()
    assert text.startswith("==================\nWARNING: DATA RACE\nWrite at ")
    assert text.count("WARNING: DATA RACE") == 1
    assert "DATA RACE" not in capsys.readouterr().err


def test_gorace_is_read_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GORACE", f"halt_on_error=1 history_size=3 log_path={tmp_path / 'r'}")
    with goheap.Heap(arena_size=64 << 20, race=True) as h:
        assert h.race.options == RaceOptions(halt_on_error=True, history_size=3, log_path=str(tmp_path / "r"))
        assert h._arrays.race_hist.shape[0] == 256 * (32 << 10 << 3)


def test_gorace_options_parse_as_go_parses_them() -> None:
    assert RaceOptions.from_gorace(None) == RaceOptions()
    assert RaceOptions.from_gorace("") == RaceOptions()
    assert RaceOptions.from_gorace("halt_on_error=1 log_path=/tmp/x strip_path_prefix=/a exitcode=3") == RaceOptions(
        halt_on_error=True, log_path="/tmp/x", exitcode=3
    )
    assert RaceOptions.from_gorace("history_size=0").history_size == 0
    for bad in ("history_size=8", "history_size=x", "halt_on_error"):
        with pytest.raises(ValueError):
            RaceOptions.from_gorace(bad)


# ================================================================ compiled code


@numba.njit
def _bump(rt, p, fn):
    nb.race_func_enter(rt, fn)
    nb.store(rt, p, nb.load(rt, p) + 1)
    nb.race_func_exit(rt)


def test_compiled_accesses_are_checked() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        fn = h.race.function("main.bump", "bump.go", 12)
        rt = h.runtime

        def bump() -> None:
            h.cache()
            _bump(rt, p, fn)
            h.after_compiled()

        in_turns([(0, bump), (1, bump)])
        [r] = h.race.reports
        assert (r.kind, r.previous_kind, r.address) == ("read", "write", p)
        assert r.stack[0] == race.Frame("main.bump", "bump.go", 12) == r.previous_stack[0]
        assert r.stack[1].function == "<compiled code>"
        assert r.stack[2].function.endswith("bump")
        assert re.search(r"by goroutine \d+:\n  main\.bump\(\)\n      bump\.go:12\n  <compiled code>\(\)\n", r.text)


def test_compiled_code_is_not_checked_on_an_ordinary_heap() -> None:
    with goheap.Heap(arena_size=64 << 20) as h:
        assert h.race is None
        assert "store_word" not in vars(h) and "alloc" not in vars(h)
        p = h.alloc(16)
        _bump(h.runtime, p, 0)
        assert h.load_word(p, 0) == 1


def test_halt_on_error_raises_out_of_compiled_code() -> None:
    with race_heap(race_options=RaceOptions(halt_on_error=True, log_path="stdout")) as h:
        p = h.alloc(16)
        rt = h.runtime
        _bump(rt, p, 0)

        def bump() -> None:
            _bump(rt, p, 0)

        [exc] = in_turns([(0, bump)], thread=threading.Thread)
        assert isinstance(exc, goheap.RaceError)
        assert "WARNING: DATA RACE\nRead at " in str(exc)
        assert h.load_word(p, 0) == 1


# ================================================================ no false positives


def _stress(h: goheap.Heap, nworkers: int, rounds: int) -> None:
    """Workers share a counter (Mutex), a table (RWMutex), hand objects on through channels and free them,
    report with a WaitGroup; the main thread checks everything after wait()."""
    shared = h.alloc(16)
    table = h.alloc(8 * nworkers)
    h.roots.add(shared)
    h.roots.add(table)
    mu = Mutex()
    rw = RWMutex()
    wg = WaitGroup()
    chans = [Chan(k % 3) for k in range(nworkers)]

    def worker(i: int) -> None:
        out = chans[i]
        inp = chans[(i - 1) % nworkers]
        for r in range(rounds):
            with mu:
                h.store_word(shared, 0, h.load_word(shared, 0) + 1)
            if r % 4 == i % 4:
                with rw:
                    h.store_word(table, i, h.load_word(table, i) + 1)
            else:
                with rw.reader():
                    sum(h.load_word(table, k) for k in range(nworkers))
            obj = h.alloc(8 * (1 + r % 5), nogc=True)  # held only by Python ints on its way: never collected
            h.store_word(obj, 0, r)
            if r % 7 == 0:
                h.gc()
            out.send(obj)
            got = inp.recv()
            h.store_word(got, 0, h.load_word(got, 0) + 1)
            h.free(got)
        wg.done()

    wg.add(nworkers)
    threads = [race.go(worker, i) for i in range(nworkers)]
    wg.wait()
    assert h.load_word(shared, 0) == nworkers * rounds
    for t in threads:
        t.join()


def test_stress_with_the_primitives_reports_nothing() -> None:
    with race_heap(gcpercent=100) as h:
        _stress(h, nworkers=4, rounds=40)
        assert h.race.reports == [] and h.race.races == 0
        h.check()


@pytest.mark.slow
def test_long_stress_with_the_primitives_reports_nothing() -> None:
    with race_heap(gcpercent=50) as h:
        _stress(h, nworkers=12, rounds=600)
        assert h.race.reports == [] and h.race.races == 0
        h.check()
