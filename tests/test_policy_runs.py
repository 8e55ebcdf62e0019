"""Heaps under every policy preset: workloads and a replay checked after each collection, the
pacer's minimum heap and memory limit, and Go 1.19's scavenger.

(The allocator state machine runs under every preset in test_heap_stateful.py; the
seed's own numbers are the fidelity tests' and the golden tables'.)
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import goheap
from goheap import inspect
from goheap._runtime import layout as L
from goheap._runtime.pacer import MIN_RUNWAY
from goheap.policy import PRESETS
from goheap.trace import KIND_ALLOC, KIND_FREE, KIND_GC, Trace
from goheap.trace.replay import replay
from goheap.workloads import run_workload

MiB = 1 << 20
PRESET_NAMES = list(PRESETS)


def _num_gc(heap: goheap.Heap) -> int:
    return int(heap._arrays.mstats[L.ST_NUMGC])


class CheckAfterCollections:
    """An ``on_tick``: heap.check() whenever a collection ran since the last look (read-only:
    the run collects as it would unobserved). Counts the collections each check covers."""

    def __init__(self) -> None:
        self.seen = 0
        self.per_check: list[int] = []

    def __call__(self, heap: goheap.Heap) -> None:
        n = _num_gc(heap)
        if n != self.seen:
            heap.check()
            self.per_check.append(n - self.seen)
            self.seen = n


# ---------------------------------------------------------------- workloads


@pytest.mark.parametrize("policy", PRESET_NAMES)
def test_binarytrees_under_every_preset(policy: str) -> None:
    seed_lines = run_workload("binarytrees", ["12"], gcpercent=100, gctrace=0, virtual_clock=True).lines
    checks = CheckAfterCollections()
    trace = io.StringIO()
    result = run_workload(
        "binarytrees", ["12"], gcpercent=100, gctrace=1, trace_stream=trace, virtual_clock=True,
        policy=policy, on_tick=checks, on_exit=lambda heap: heap.check(),
    )  # fmt: skip
    assert result.lines == seed_lines  # the program's output does not depend on the runtime
    assert result.policy is PRESETS[policy]
    assert sum(checks.per_check) == result.memstats.num_gc > 0
    assert len(result.memstats.by_size) == PRESETS[policy].size_classes.num_classes
    first = trace.getvalue().splitlines()[0]
    if policy == "seed":
        assert first.startswith("gc1(1): ")  # exactly the 2013 runtime's lines
    else:
        assert first == PRESETS[policy].trace_line() and result.gctrace_lines()[0] == first


@pytest.fixture(scope="module")
def seed_output():
    """Each big workload's output under the seed's policy (timings left out), run once."""
    cache: dict[str, list[str]] = {}

    def output(workload: str) -> list[str]:
        if workload not in cache:
            lines = run_workload(workload, gcpercent=100, gctrace=0, virtual_clock=True).lines
            cache[workload] = [line for line in lines if "msec" not in line]
        return cache[workload]

    return output


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["gcbench", "churn"])
@pytest.mark.parametrize("policy", PRESET_NAMES[1:])
def test_the_big_workloads_under_every_preset(workload: str, policy: str, seed_output) -> None:
    # check() after every collection would walk these heaps (up to 300 MB) hundreds of times:
    # here it runs at the end; binarytrees and the replay above check after each collection
    result = run_workload(workload, gcpercent=100, gctrace=0, virtual_clock=True, policy=policy,
                          on_exit=lambda heap: heap.check())
    assert [line for line in result.lines if "msec" not in line] == seed_output(workload)
    assert result.memstats.num_gc > 5


# ---------------------------------------------------------------- a replay


def _trace() -> Trace:
    """A small program: lists of nodes of many sizes (some large), half dropped at each collection."""
    rng = np.random.default_rng(7)
    sizes = np.concatenate([rng.choice([8, 16, 24, 40, 96, 300, 1100, 5000, 20000], 3000), [40000, 70000, 200000] * 5])
    kind, addr, size = [], [], []
    live: list[tuple[int, int]] = []
    a = 0xC000010000
    for i, s in enumerate(rng.permutation(sizes)):
        kind.append(KIND_ALLOC)
        addr.append(a)
        size.append(int(s))
        live.append((a, int(s)))
        a += int(s) + 8 - int(s) % 8
        if i % 500 == 499:
            for b, t in live[::2]:
                kind.append(KIND_FREE)
                addr.append(b)
                size.append(t)
            live = live[1::2]
            kind.append(KIND_GC)
            addr.append(0)
            size.append(0)
    return Trace(kind=kind, addr=addr, size=size, type_id=[-1] * len(kind), func_id=[-1] * len(kind),
                 types=(), meta={"source": "policy-test"})


@pytest.mark.parametrize("mode", ["gc", "free"])
@pytest.mark.parametrize("policy", PRESET_NAMES)
def test_a_replay_under_every_preset(policy: str, mode: str) -> None:
    checks = CheckAfterCollections()
    # one event a chunk: an allocation triggers at most one collection, so check() follows each
    result = replay(_trace(), mode=mode, gogc=100, policy=policy, check=True, chunk_events=1, on_tick=checks)
    assert result.policy is PRESETS[policy]
    assert sum(checks.per_check) == result.num_gc and set(checks.per_check) <= {1}
    if mode == "gc":
        assert result.num_gc > 0
    assert f"Policy={policy}" in result.comparison_lines()
    assert result.to_json()["policy"] == PRESETS[policy].to_dict()


# ---------------------------------------------------------------- the pacer: minimum heap


def _churn_python(heap: goheap.Heap, live_objects: int, garbage_bytes: int, size: int = 4096) -> None:
    """A small program: keep ``live_objects`` blocks of ``size`` bytes alive, allocate garbage."""
    keep = [heap.roots.add(heap.alloc(size, noscan=True)) for _ in range(live_objects)]
    for _ in range(garbage_bytes // size):
        heap.alloc(size, noscan=True)
    assert len(keep) == live_objects


@pytest.mark.parametrize(("gogc", "minimum"), [(100, 4 * MiB), (50, 2 * MiB)])
def test_a_small_program_collects_as_rarely_as_go_since_1_5(gogc: int, minimum: int) -> None:
    garbage = 24 * MiB
    with goheap.Heap(arena_size=128 * MiB, policy="modern-pacer", gcpercent=gogc, memprofilerate=0, virtual_clock=True) as h:
        assert h.read_mem_stats().next_gc == minimum  # the first goal, where the seed starts at 0
        _churn_python(h, 16, garbage)  # 64 KB live: 2 x live is far below the minimum
        rows = h.gctrace_rows()
        h.check()
    with goheap.Heap(arena_size=128 * MiB, gcpercent=gogc, memprofilerate=0, virtual_clock=True) as seed:
        _churn_python(seed, 16, garbage)
        seed_gcs = _num_gc(seed)
    # Go >= 1.5: a collection each time the heap reaches the minimum, so about garbage / minimum of them
    assert len(rows) in range(garbage // minimum - 1, garbage // minimum + 2)
    assert (rows[:, L.TR_NEXT_GC] == minimum).all()
    assert seed_gcs > 10 * len(rows)  # the seed collects whenever the 64 KB live heap doubles


def test_set_gc_percent_moves_the_minimum_at_once_under_a_modern_pacer() -> None:
    with goheap.Heap(arena_size=64 * MiB, policy="modern-pacer", gcpercent=100, memprofilerate=0) as h:
        assert h.set_gc_percent(200) == 100
        assert h.read_mem_stats().next_gc == 8 * MiB  # gcControllerCommit: at once, as Go does
    with goheap.Heap(arena_size=64 * MiB, gcpercent=100, memprofilerate=0) as seed:
        seed.set_gc_percent(200)
        assert seed.read_mem_stats().next_gc == 0  # the seed waits for the next collection


# ---------------------------------------------------------------- the pacer: memory limit


OBJECT = 40 << 10  # large objects: HeapAlloc counts them at once (no cache lag)


def _grow_live_heap(heap: goheap.Heap, live_target: int, step_garbage: int = 4) -> list[tuple[int, int]]:
    """Grow the live heap by one object at a time up to ``live_target`` bytes, allocating
    ``step_garbage`` garbage objects after each; (live bytes, HeapAlloc) after every allocation."""
    samples = []
    live = 0
    while live < live_target:
        heap.roots.add(heap.alloc(OBJECT, noscan=True))
        live += OBJECT
        for _ in range(step_garbage):
            heap.alloc(OBJECT, noscan=True)
            samples.append((live, inspect.mem_stats(heap).heap_alloc))
    return samples


def test_a_memory_limit_collects_more_and_keeps_the_heap_under_it() -> None:
    limit = 24 * MiB
    config = dict(arena_size=256 * MiB, gcpercent=100, memprofilerate=0, virtual_clock=True, policy="modern-pacer")
    with goheap.Heap(**config, memory_limit="off") as free_heap:
        unlimited = _grow_live_heap(free_heap, 20 * MiB)
        unlimited_gcs = _num_gc(free_heap)
    with goheap.Heap(**config, memory_limit="24MiB") as h:
        assert h.policy.pacer.memory_limit == limit
        limited = _grow_live_heap(h, 20 * MiB)
        h.check()
        limited_gcs = _num_gc(h)
    # GOGC=100 alone lets the heap grow to twice the live heap: over the limit
    assert max(a for _, a in unlimited) > limit + 4 * MiB
    assert limited_gcs > unlimited_gcs
    # while the live heap leaves room (it stays under the limit less the runtime's own memory
    # and the pacer's headroom), HeapAlloc stays under the limit
    assert max(a for _, a in limited) <= limit


def test_past_the_limit_it_collects_every_64k_and_goes_on() -> None:
    # a stop-the-world collector cannot cap its CPU as Go's limiter does: goheap keeps Go's
    # minimum runway instead (see goheap._runtime.pacer)
    limit = 8 * MiB
    with goheap.Heap(arena_size=256 * MiB, gcpercent=100, memprofilerate=0, virtual_clock=True,
                     policy="modern-pacer", memory_limit=limit) as h:
        samples = _grow_live_heap(h, 12 * MiB, step_garbage=2)  # past the limit; allocation still succeeds
        h.check()
        rows = h.gctrace_rows()
    over = [(live, a) for live, a in samples if live > limit]
    assert over and all(a <= live + MIN_RUNWAY + 2 * OBJECT for live, a in over)
    late = rows[rows[:, L.TR_HEAP1] > limit]
    assert len(late) > 0 and (late[:, L.TR_NEXT_GC] == late[:, L.TR_HEAP1] + MIN_RUNWAY).all()


def test_set_memory_limit_is_debug_set_memory_limit() -> None:
    with goheap.Heap(arena_size=64 * MiB, gcpercent=100, memprofilerate=0, policy="modern") as h:
        assert h.set_memory_limit("16MiB") is None
        assert h.policy.pacer.memory_limit == 16 * MiB
        assert h.read_mem_stats().next_gc < 16 * MiB
        assert h.set_memory_limit(None) == 16 * MiB
        assert h.read_mem_stats().next_gc == 4 * MiB  # back to the minimum heap
        with pytest.raises(goheap.ConfigError, match="memory limit"):
            h.set_memory_limit("16MB")


def test_gogc_off_with_a_memory_limit_still_collects() -> None:
    with goheap.Heap(arena_size=256 * MiB, gcpercent=-1, memprofilerate=0, virtual_clock=True, policy="modern-pacer",
                     memory_limit="16MiB") as h:
        samples = _grow_live_heap(h, 4 * MiB)
        assert _num_gc(h) > 0 and max(a for _, a in samples) <= 16 * MiB
        assert h.gc()  # the seed's GOGC=off refuses even runtime.GC(); a limit re-enables the collector
    with goheap.Heap(arena_size=64 * MiB, gcpercent=-1, memprofilerate=0) as seed:
        assert not seed.gc()


# ---------------------------------------------------------------- the scavenger


def test_go_1_19s_scavenger_keeps_the_retained_heap_near_the_goal() -> None:
    def shrink(policy: str) -> goheap.MemStats:
        with goheap.Heap(arena_size=256 * MiB, gcpercent=100, memprofilerate=0, virtual_clock=True, policy=policy) as h:
            handles = [h.roots.add(h.alloc(OBJECT, noscan=True)) for _ in range(512)]  # 20 MB live
            h.gc()
            for r in handles:
                h.roots.remove(r)
            h.gc()
            h.gc()
            h.check()
            return h.read_mem_stats()

    seed, modern = shrink("seed"), shrink("modern")
    assert seed.heap_released == 0  # the seed waits 5 idle minutes
    retained = modern.heap_sys - modern.heap_released
    assert modern.heap_released > 16 * MiB and retained <= 8 * MiB


def test_the_seeds_scavenger_ages_come_from_the_policy() -> None:
    S = 10**9
    out = io.StringIO()
    policy = goheap.Policy.from_dict({"name": "quick", "scavenger": {"force_gc_period_ns": 10 * S, "release_idle_after_ns": 20 * S}})
    with goheap.Heap(arena_size=64 * MiB, gcpercent=100, gctrace=1, trace_stream=out, memprofilerate=0,
                     virtual_clock=True, policy=policy) as h:
        h.free(h.alloc(1 << 20))
        h.advance_clock(5 * S)  # the first tick: min(10, 20) / 2 s
        assert h.read_mem_stats().heap_released == 0
        h.advance_clock(30 * S)
        assert h.read_mem_stats().heap_released > 0
    lines = out.getvalue().splitlines()
    assert lines[0] == policy.trace_line() and any(line.startswith("scvg0:") for line in lines)


# ---------------------------------------------------------------- a table of one's own


@pytest.mark.nojit
def test_a_table_of_its_own_and_past_its_largest_class_large_objects() -> None:
    policy = goheap.Policy("four", goheap.SizeClassTable.table([[16, 1], [64, 1], [512, 1], [4096, 2]], page_size=8192))
    with goheap.Heap(arena_size=64 * MiB, gcpercent=-1, memprofilerate=0, policy=policy) as h:
        got = {n: h.lookup(h.alloc(n))[1] for n in (1, 17, 65, 4096, 4097, 40000)}
        assert got == {1: 16, 17: 64, 65: 512, 4096: 4096, 4097: 8192, 40000: 40960}  # 8 KB pages
        spans = goheap.inspect.span_records(h, free=False)
        assert {s.sizeclass for s in spans} == {0, 1, 2, 3, 4} and all(s.page_size == 8192 for s in spans)
        ms = h.read_mem_stats()
        assert [b.size for b in ms.by_size] == [0, 16, 64, 512, 4096]
        h.check()


# ---------------------------------------------------------------- the policy is named in every output


def test_the_policy_is_named_in_json_trace_report_and_profile(tmp_path) -> None:
    from click.testing import CliRunner

    from goheap.cli import main
    from goheap.report.pprof import read_profile

    report, profile = tmp_path / "r.html", tmp_path / "p.pb.gz"
    args = ["run", "--policy", "modern", "--memory-limit", "64MiB", "--json", "--gctrace",
            "--report", str(report), "--heap-profile", str(profile), "binarytrees", "12"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = __import__("json").loads(result.stdout)
    assert data["policy"]["name"] == "modern" and data["policy"]["pacer"]["memory_limit"] == 64 * MiB
    modern = PRESETS["modern"].replace(memory_limit=64 * MiB)
    assert data["gctrace"][0] == modern.trace_line()  # the trace's first line names it
    assert result.stderr.splitlines()[0] == modern.trace_line()
    assert "memory limit 64 MiB" in report.read_text() and "with policy modern" in report.read_text()
    p = read_profile(profile)
    assert modern.trace_line() in [p.string_table[c] for c in p.comment]
