"""Tests of the replay of traces on goheap (:mod:`goheap.trace.replay`) and ``goheap replay``."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import goheap
from goheap.cli import main
from goheap.errors import HeapError, OutOfMemory
from goheap.trace import KIND_ALLOC, KIND_FREE, KIND_GC, Trace, import_log, import_log_to_file
from goheap.trace.replay import ReplayError, ReplayPlan, TraceOverlapError, replay

SHARED = Path(__file__).resolve().parents[2] / "../shared/data/go1.19-traces"
A = 0xC000010000  # a Go-like heap address


def make_trace(events: list[tuple], source: str = "synthetic.log") -> Trace:
    """Events as (kind, addr, size[, typed]); typed (default True) logs a type for an alloc."""
    kind, addr, size, type_id = [], [], [], []
    for e in events:
        k, a, s = e[:3]
        typed = e[3] if len(e) > 3 else True
        kind.append(k)
        addr.append(a)
        size.append(s)
        type_id.append(0 if k == KIND_ALLOC and typed else -1)
    return Trace(
        kind=kind,
        addr=addr,
        size=size,
        type_id=type_id,
        func_id=[-1] * len(kind),
        types=("*main.Node",),
        meta={"source": source},
    )


def alloc(a: int, s: int = 16, typed: bool = True) -> tuple:
    return (KIND_ALLOC, a, s, typed)


def free(a: int, s: int = 16) -> tuple:
    return (KIND_FREE, a, s)


GC = (KIND_GC, 0, 0)

# A small program: a list of 200 nodes built, half of it dropped, a collection, more.
SMALL = make_trace(
    [alloc(A + 16 * i, 16, i % 3 != 0) for i in range(200)]
    + [free(A + 16 * i) for i in range(0, 200, 2)]
    + [GC]
    + [alloc(A + 16 * i, 32) for i in range(0, 200, 2)]
    + [GC]
    + [free(A + 16 * i, 32) for i in range(0, 100, 2)]
)


def reference_live(trace: Trace) -> tuple[list[tuple[int, int]], int, int, int]:
    """Plain-Python model: (objects, bytes) live at each GC point, peaks, pre-trace objects."""
    live: dict[int, int] = {}
    seen: set[int] = set()
    pre: dict[int, int] = {}
    objects = nbytes = 0
    points, peak_o, peak_b = [], 0, 0
    for k, a, s in zip(trace.kind.tolist(), trace.addr.tolist(), trace.size.tolist()):
        if k == KIND_GC:
            points.append((objects, nbytes))
        elif k == KIND_ALLOC:
            live[a] = s
            seen.add(a)
            objects += 1
            nbytes += s
        elif a in live:
            objects -= 1
            nbytes -= live.pop(a)
        else:
            assert a not in seen
            seen.add(a)
            pre[a] = s
            objects -= 1
            nbytes -= s
        peak_o, peak_b = max(peak_o, objects), max(peak_b, nbytes)
    n_pre, b_pre = len(pre), sum(pre.values())
    return [(o + n_pre, b + b_pre) for o, b in points], peak_o + n_pre, peak_b + b_pre, n_pre


# ---------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------


def test_plan_slots_and_live_counts() -> None:
    plan = ReplayPlan.build(SMALL)
    points, peak_o, peak_b, n_pre = reference_live(SMALL)
    assert plan.gc_live.tolist() == [list(p) for p in points] == [[100, 1600], [200, 4800]]
    assert (plan.peak_objects, plan.peak_bytes) == (peak_o, peak_b) == (200, 4800)
    assert plan.nslots == 200 and n_pre == 0 and len(plan.pre_sizes) == 0
    assert plan.slot[np.flatnonzero(SMALL.kind == KIND_GC)].tolist() == [-1, -1]
    # a free uses the slot of the allocation it ends; freed slots are reused, last first
    assert plan.slot[200] == plan.slot[0] and plan.slot[301] == plan.slot[299] == plan.slot[198]


def test_plan_objects_allocated_before_the_trace() -> None:
    t = make_trace([alloc(A), free(A + 0x100, 48), GC, free(A), alloc(A + 0x100, 64), free(A + 0x200, 32)])
    plan = ReplayPlan.build(t)
    assert plan.pre_sizes.tolist() == [48, 32] and plan.pre_events.tolist() == [1, 5]
    assert plan.slot[1] == 0 and plan.slot[5] == 1  # pre-trace objects take the first slots
    assert plan.slot[0] >= 2
    assert plan.gc_live.tolist() == [[2, 16 + 32]]  # A, and the one freed at event 5
    assert plan.peak_objects == 3 and plan.nslots == 3
    assert reference_live(t)[0] == [(2, 48)]


@pytest.mark.parametrize(
    ("events", "event", "addr", "other", "what"),
    [
        ([alloc(A), GC, alloc(A)], 2, A, 0, "allocates 0xc000010000, which is still live (allocated at event 0"),
        ([alloc(A), free(A), alloc(A + 8), free(A)], 3, A, 1, "frees 0xc000010000, which is not live (freed at event 1"),
        ([free(A), free(A)], 1, A, 0, "which is not live (freed at event 0"),
        ([alloc(2**64 - 16), alloc(2**64 - 16)], 1, 2**64 - 16, 0, "allocates 0xfffffffffffffff0"),
    ],
)
def test_plan_rejects_overlapping_objects(events, event: int, addr: int, other: int, what: str) -> None:
    t = make_trace(events)
    with pytest.raises(TraceOverlapError) as info:
        ReplayPlan.build(t)
    e = info.value
    assert (e.event, e.addr, e.other) == (event, addr, other)
    assert str(e).startswith(f"event {event}: trace")
    assert what in str(e) and "the trace's objects overlap" in str(e)
    assert isinstance(e, ReplayError) and isinstance(e, HeapError) and isinstance(e, ValueError)


def test_plan_rejects_sizes_beyond_the_arena() -> None:
    t = make_trace([alloc(A), alloc(A + 64, 1 << 40)])
    with pytest.raises(ReplayError, match=r"^event 1: tracealloc\(0xc000010040, 0x10000000000\) is larger"):
        ReplayPlan.build(t, max_size=1 << 30)


@st.composite
def random_traces(draw, valid: bool):
    """Random alloc/free/GC sequences over few addresses (so they are reused a lot)."""
    n = draw(st.integers(0, 300))
    addrs = [A + 16 * i for i in range(draw(st.integers(1, 40)))]
    live: set[int] = set()
    events = []
    for _ in range(n):
        r = draw(st.integers(0, 9))
        a = draw(st.sampled_from(addrs))
        if r == 0:
            events.append(GC)
        elif r <= 5 and (not valid or a not in live):
            events.append(alloc(a, draw(st.sampled_from([8, 16, 48, 4096, 40000]))))
            live.add(a)
        elif not valid or a in live:
            events.append(free(a, 16))
            live.discard(a)
    return make_trace(events)


@settings(max_examples=100, deadline=None)
@given(random_traces(valid=True))
def test_plan_against_a_reference_model(t: Trace) -> None:
    plan = ReplayPlan.build(t)
    points, peak_o, peak_b, n_pre = reference_live(t)
    assert plan.gc_live.tolist() == [list(p) for p in points]
    assert (plan.peak_objects, plan.peak_bytes, len(plan.pre_sizes)) == (peak_o, peak_b, n_pre)
    # no slot ever holds two objects at once, and a free ends its allocation's slot
    holder: dict[int, int] = {int(s): -1 for s in range(n_pre)}  # pre-trace objects hold theirs
    for i, (k, a) in enumerate(zip(t.kind.tolist(), t.addr.tolist())):
        s = int(plan.slot[i])
        if k == KIND_GC:
            assert s == -1
        elif k == KIND_ALLOC:
            assert 0 <= s < plan.nslots and s not in holder
            holder[s] = a
        else:
            assert holder.pop(s) in (a, -1)


@settings(max_examples=100, deadline=None)
@given(random_traces(valid=False))
def test_plan_finds_the_first_overlap(t: Trace) -> None:
    live: set[int] = set()
    dead: set[int] = set()
    first = None
    for i, (k, a) in enumerate(zip(t.kind.tolist(), t.addr.tolist())):
        if k == KIND_ALLOC:
            if a in live:
                first = i
                break
            live.add(a)
            dead.discard(a)
        elif k == KIND_FREE:
            if a in dead:
                first = i
                break
            live.discard(a)
            dead.add(a)
    if first is None:
        ReplayPlan.build(t)
    else:
        with pytest.raises(TraceOverlapError) as info:
            ReplayPlan.build(t)
        assert info.value.event == first and info.value.addr == int(t.addr[first])


# ---------------------------------------------------------------------------------------
# Replaying
# ---------------------------------------------------------------------------------------


def test_free_mode_follows_the_trace_exactly() -> None:
    r = replay(SMALL, mode="free", check=True)
    assert r.mode == "free" and r.events == len(SMALL) and r.pre_trace_objects == 0
    # sizes 16 and 32 are size classes of both runtimes, so bytes agree too
    assert [(p.goheap_objects, p.goheap_bytes) for p in r.gc_points] == [(100, 1600), (200, 4800)]
    assert [(p.trace_objects, p.trace_bytes) for p in r.gc_points] == [(100, 1600), (200, 4800)]
    assert [p.event for p in r.gc_points] == [300, 401]
    assert r.trace_num_gc == 2 and r.num_gc > 0  # next_gc starts at 0: the first alloc collects
    assert (r.goheap_peak_objects, r.goheap_peak_heap_alloc) == (r.trace_peak_objects, r.trace_peak_bytes)
    m = r.memstats
    assert m.mallocs - m.frees == m.heap_objects == 150
    assert m.heap_alloc == 100 * 16 + 50 * 32
    # explicit frees only (the collector freed nothing); + the heap's start-up free(malloc(1))
    assert (m.mallocs, m.frees) == (300 + 1, 150 + 1)


def test_gc_mode_lets_the_collector_free() -> None:
    r = replay(SMALL, mode="gc", check=True)
    m = r.memstats
    assert r.num_gc > 0 and m.mallocs == 300 + 1  # + the heap's start-up free(malloc(1))
    assert m.frees <= 150 + 1 and m.heap_objects >= 150  # the garbage may not be collected yet
    for p in r.gc_points:
        assert p.goheap_objects >= p.trace_objects and p.goheap_bytes >= p.trace_bytes
    assert r.goheap_peak_objects >= r.trace_peak_objects
    assert [g.num_gc for g in r.goheap_gcs] == list(range(1, r.num_gc + 1))
    assert all(-1 <= g.event < len(SMALL) for g in r.goheap_gcs)
    # GOGC=off: nothing is ever collected
    off = replay(SMALL, mode="gc", gogc=-1)
    assert off.num_gc == 0 and off.gogc == -1 and off.memstats.frees == 1  # the start-up free
    assert off.memstats.heap_objects == 300


def test_gc_mode_collects_dropped_objects() -> None:
    """A long churn: everything dropped is eventually found by goheap's collector."""
    events = []
    for round_ in range(40):
        events += [alloc(A + 64 * i, 64) for i in range(500)]
        events += [free(A + 64 * i, 64) for i in range(500)]
    r = replay(make_trace(events), mode="gc", check=True)
    assert r.num_gc > 5
    assert r.memstats.frees > 15_000
    assert r.goheap_peak_objects < 20_000  # far below the 20,000 allocations


@pytest.mark.nojit
def test_replay_interpreted_smoke() -> None:
    """Small enough to run under NUMBA_DISABLE_JIT=1 too."""
    t = make_trace([alloc(A), alloc(A + 16, 8, False), GC, free(A), free(A + 0x40, 32)])
    for mode in ("gc", "free"):
        r = replay(t, mode=mode, check=True)
        assert r.pre_trace_objects == 1
        assert [(p.trace_objects, p.goheap_objects) for p in r.gc_points] == [(3, 3)]


def test_noscan_when_no_type_was_logged() -> None:
    t = make_trace([alloc(A, 64, True), alloc(A + 64, 64, False)])
    with goheap.Heap(virtual_clock=True) as h:
        replay(t, heap=h)
        from goheap.trace.replay import _shadow_depth  # the replay's roots are on the stack

        assert _shadow_depth(h.runtime, h.cache()) == 2
        st = h.read_mem_stats()
        assert st.heap_objects == 2
        h.check()


def test_objects_allocated_before_the_trace_are_replayed() -> None:
    t = make_trace([alloc(A), GC, free(A + 0x1000, 48), GC])
    for mode in ("free", "gc"):
        r = replay(t, mode=mode, check=True)
        assert r.pre_trace_objects == 1
        assert [(p.trace_objects, p.trace_bytes) for p in r.gc_points] == [(2, 64), (1, 16)]
        if mode == "free":
            assert [(p.goheap_objects, p.goheap_bytes) for p in r.gc_points] == [(2, 64), (1, 16)]
        assert r.goheap_gcs[0].event == -1  # the very first allocation collects, before event 0


def test_replay_is_deterministic_and_chunking_changes_nothing() -> None:
    a = replay(SMALL).to_json()
    b = replay(SMALL, chunk_events=7).to_json()
    assert a == b
    assert json.loads(json.dumps(a)) == a


def test_progress() -> None:
    seen: list[int] = []
    replay(SMALL, progress=seen.append, chunk_events=100)
    assert seen == [100, 200, 300, 400, len(SMALL)]


def test_empty_trace() -> None:
    r = replay(make_trace([]))
    assert r.events == 0 and r.gc_points == () and r.trace_num_gc == 0
    assert r.memstats.heap_objects == 0


def test_gogc_and_gctrace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOGC", "off")
    assert replay(SMALL).num_gc == 0  # the environment, as the seed reads it
    r = replay(SMALL, gogc=100)  # an explicit value wins
    assert r.gogc == 100 and r.num_gc > 0
    out = io.StringIO()
    r = replay(SMALL, gogc=50, gctrace=1, trace_stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == r.num_gc > 0
    assert lines[0].startswith("gc1(1): 0+0+0 ms, 0 -> 0 MB ")  # virtual clock: 0 ms
    monkeypatch.setenv("GOGCTRACE", "1")
    out = io.StringIO()
    replay(SMALL, gogc=50, trace_stream=out)
    assert out.getvalue().splitlines() == lines


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        replay(SMALL, mode="manual")


def test_overlap_leaves_the_heap_alone() -> None:
    bad = make_trace([alloc(A), alloc(A + 16), free(A + 16), free(A + 16)])
    with goheap.Heap(virtual_clock=True) as h:
        keep = h.alloc(100)
        h.roots.add(keep)
        before = h.read_mem_stats()
        with pytest.raises(TraceOverlapError, match=r"^event 3: tracefree\(0xc000010010, 0x10\) frees"):
            replay(bad, heap=h)
        assert h.read_mem_stats() == before
        h.check()


def test_out_of_memory_names_the_event_and_leaves_a_consistent_heap() -> None:
    events = [alloc(A + 4096 * i, 4096) for i in range(400)]  # 1.6 MB, all live
    with goheap.Heap(arena_size=1 << 20, virtual_clock=True) as h:
        with pytest.raises(OutOfMemory, match=r"^event \d+: tracealloc\(0xc0\w+, 0x1000\): out of memory: cannot"):
            replay(make_trace(events), heap=h)
        h.check()
        st = h.read_mem_stats()
        assert 100 < st.heap_objects < 400
        assert h.free_os_memory() >= 0  # the heap still works


def test_replay_needs_a_deep_enough_shadow_stack() -> None:
    events = [alloc(A + 16 * i) for i in range(100)]
    with goheap.Heap(virtual_clock=True, limits=goheap.Limits(shadow_depth=120)) as h:
        with pytest.raises(ReplayError, match=r"needs 100 shadow-stack slots .* Limits\(shadow_depth=164\)"):
            replay(make_trace(events), heap=h)
        h.check()


# ---------------------------------------------------------------------------------------
# The real Go 1.19 traces
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["binary-trees-10-gogc20.log.gz", "gofmt-parser-gogc20.log.gz"])
def real(request: pytest.FixtureRequest) -> Trace:
    path = SHARED / request.param
    if not path.exists():
        pytest.skip(f"shared trace {path} not available")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return import_log(path)


def test_real_trace_free_mode(real: Trace) -> None:
    r = replay(real, mode="free", gogc=20, check=True)
    points, peak_o, peak_b, n_pre = reference_live(real)
    assert n_pre == r.pre_trace_objects == 3  # runtime objects allocated before GODEBUG was read
    assert [(p.trace_objects, p.trace_bytes) for p in r.gc_points] == points
    assert [p.goheap_objects for p in r.gc_points] == [o for o, _ in points]  # exactly
    for p in r.gc_points:  # goheap's 2013 size classes are no finer than Go 1.19's here
        assert p.trace_bytes <= p.goheap_bytes <= p.trace_bytes * 1.1
    assert (r.trace_peak_objects, r.trace_peak_bytes) == (peak_o, peak_b)
    assert r.goheap_peak_objects == peak_o
    assert r.memstats.heap_objects == real.counts()["alloc"] - real.counts()["free"] + 3
    assert r.trace_num_gc == real.counts()["gc"] and r.num_gc > 0


def test_real_trace_gc_mode(real: Trace) -> None:
    r = replay(real, mode="gc", gogc=20, check=True)  # check: no live object is ever freed
    assert r.num_gc > 0 and r.trace_num_gc == real.counts()["gc"]
    for p in r.gc_points:
        assert p.goheap_objects >= p.trace_objects
    assert r.goheap_peak_objects >= r.trace_peak_objects
    assert r.memstats.frees > 0  # goheap's own collector found the dropped objects
    assert r.memstats.mallocs == real.counts()["alloc"] + 3 + 1  # + pre-trace, + start-up malloc(1)
    # more GOGC, fewer collections
    assert replay(real, mode="gc", gogc=200).num_gc < r.num_gc


@pytest.mark.slow
def test_real_trace_through_the_file_format(real: Trace, tmp_path: Path) -> None:
    path = SHARED / real.meta["source"]
    out = tmp_path / "t.trace.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import_log_to_file(path, out)
    loaded = Trace.load(out)
    assert loaded == real
    assert replay(loaded).to_json() == replay(real).to_json()


# ---------------------------------------------------------------------------------------
# goheap replay
# ---------------------------------------------------------------------------------------


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    return SMALL.save(tmp_path / "small.trace.npz")


def test_cli_replay(small_file: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(small_file)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "# MemStats"
    r = replay(SMALL)
    n = len(r.memstats.go_lines())
    assert lines[1 : 1 + n] == r.memstats.go_lines()
    assert lines[1 + n :] == r.comparison_lines()
    text = result.stdout
    assert "Mode=gc" in text and "GOGC=100" in text and "Trace=synthetic.log" in text
    assert "# Comparison with the recorded run" in text
    assert result.stderr == ""  # no progress, no gctrace

    result = CliRunner().invoke(main, ["replay", str(small_file), "--mode", "free", "--gogc", "50"])
    assert result.exit_code == 0
    assert "Mode=free" in result.stdout and "GOGC=50" in result.stdout
    assert CliRunner().invoke(main, ["replay", str(small_file), "--gogc", "off"]).stdout.count("NumGC=0") == 1


def test_cli_replay_json(small_file: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(small_file), "--json", "--mode", "free"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d == json.loads(json.dumps(replay(SMALL, mode="free").to_json()))
    assert d["memstats"]["HeapObjects"] == 150 and d["mode"] == "free"
    assert d["comparison"]["num_gc"]["recorded"] == 2
    assert [p["goheap_objects"] for p in d["comparison"]["gc_points"]] == [100, 200]


def test_cli_replay_report_and_heap_profile(small_file: Path, tmp_path: Path) -> None:
    from goheap.report.pprof import read_profile

    report, profile = tmp_path / "r.html", tmp_path / "p.pb.gz"
    args = ["replay", str(small_file), "--report", str(report), "--heap-profile", str(profile), "--memprofilerate", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and "small.trace.npz" in html and "<svg" in html
    p = read_profile(profile)
    functions = {p.string_table[f.name] for f in p.function}
    # allocations are charged to the function the trace names for them; this trace names
    # none, so to the runtime (the shared traces are charged to main.bottomUp etc.)
    assert "runtime" in functions and p.sample
    # no --memprofilerate: a rate that samples this short trace, said on stderr
    result = CliRunner().invoke(main, ["replay", str(small_file), "--heap-profile", str(profile)])
    assert result.exit_code == 0 and "goheap replay: heap profile: MemProfileRate=1, " in result.stderr
    assert len(read_profile(profile).sample) == len(p.sample)
    bad = CliRunner().invoke(main, ["replay", str(small_file), "--report", str(tmp_path / "no" / "r.html")])
    assert bad.exit_code == 2 and "cannot write" in bad.stderr


def test_cli_replay_gctrace_and_environment(small_file: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(small_file), "--gctrace"])
    assert result.exit_code == 0
    assert result.stderr.startswith("gc1(1): ")
    numgc = int(next(s for s in result.stdout.splitlines() if s.startswith("NumGC="))[6:])
    assert len(result.stderr.splitlines()) == numgc
    env = CliRunner(env={"GOGCTRACE": "1", "GOGC": "50"}).invoke(main, ["replay", str(small_file)])
    assert env.stderr.startswith("gc1(1): ") and "GOGC=50" in env.stdout
    flag = CliRunner(env={"GOGC": "50"}).invoke(main, ["replay", str(small_file), "--gogc", "200"])
    assert "GOGC=200" in flag.stdout  # --gogc wins over GOGC


def test_cli_replay_errors(tmp_path: Path) -> None:
    def run(*args: str):
        result = CliRunner().invoke(main, ["replay", *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        return result.stderr

    assert "goheap replay: error: cannot read" in run(str(tmp_path / "missing.npz"))
    assert "is a directory" in run(str(tmp_path))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    assert "not a valid goheap trace file: cannot read it as a .npz archive (it is not a zip" in run(str(junk))
    log = tmp_path / "prog.log"
    log.write_text("tracealloc(0x10, 0x8)\ngoroutine 1 [running]:\nmain.f()\n\t/x.go:1\n\n")
    assert "import it first with 'goheap trace import" in run(str(log))
    bad = make_trace([alloc(A), free(A), free(A)]).save(tmp_path / "bad.trace.npz")
    err = run(str(bad))
    assert err.startswith("goheap replay: error: event 2: tracefree(0xc000010000, 0x10) frees 0xc000010000")
    assert "Invalid value for '--mode'" in CliRunner().invoke(main, ["replay", str(bad), "--mode", "x"]).stderr
    assert "Invalid value for '--gogc'" in CliRunner().invoke(main, ["replay", str(bad), "--gogc", "x"]).stderr


def test_main_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "replay" in result.stdout and "trace" in result.stdout


def test_cli_progress_on_a_terminal(small_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With stderr a terminal, import and replay show rich progress; results are the same."""
    import goheap.trace.cli as cli

    plain = CliRunner().invoke(main, ["replay", str(small_file)])
    monkeypatch.setattr(cli, "_stderr_is_tty", lambda: True)
    shown = CliRunner().invoke(main, ["replay", str(small_file)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == plain.stdout
    assert "M events/s" in shown.stderr  # the timing line, on terminals only
    log = tmp_path / "p.log"
    log.write_text("tracealloc(0x10, 0x8)\ngoroutine 1 [running]:\nmain.f()\n\t/x.go:1\n\n" * 5000)
    result = CliRunner().invoke(main, ["trace", "import", str(log)])
    assert result.exit_code == 0, result.output
    assert len(Trace.load(tmp_path / "p.trace.npz")) == 5000


def test_public_names() -> None:
    import goheap.trace as trace

    assert trace.__all__ == sorted(trace.__all__)
    for name in ("replay", "ReplayPlan", "ReplayResult", "ReplayError", "TraceOverlapError", "GCPoint"):
        assert name in trace.__all__
        obj = getattr(trace, name)
        if isinstance(obj, type):
            assert obj.__module__ == "goheap.trace"


EXECTRACE_FIXTURE = Path(__file__).resolve().parent / "data" / "fx-1.27.3.trace.gz"


def test_replay_of_an_execution_trace_on_its_clock() -> None:
    from goheap.trace import import_exectrace
    from goheap.trace.replayreport import replay_figure

    t = import_exectrace(EXECTRACE_FIXTURE)
    r = replay(t, gogc=100)
    assert r.trace_num_gc == 2 and r.num_gc >= 1
    assert r.gogc_source == "the gogc argument" and r.duration_ns > 0
    points = r.gc_points
    assert [p.time_ns for p in points] == t.time_ns[t.kind == KIND_GC].tolist()
    assert all(p.end_ns > p.time_ns and p.recorded_heap_alloc > 0 for p in points)
    assert len(r.series) > 20 and (np.diff(r.series[:, 0]) > 0).all()  # sampled by events
    lines = r.comparison_lines()
    assert "GOGC=100 (from the gogc argument)" in lines and any(line.startswith("RecordedTime=") for line in lines)
    assert any("rec HeapAlloc" in line for line in lines)
    assert lines[-1].startswith("# A free in the trace is when the recorded run's sweeper freed the block")
    fig, caption = replay_figure(t, r)
    assert "collected 2 times" in caption and fig.axes[0].get_xlabel() == "time in the recorded run (ms)"


def test_frequent_collections_get_a_note() -> None:
    from goheap.trace import import_exectrace

    r = replay(import_exectrace(EXECTRACE_FIXTURE), gogc=5)
    assert r.gc_ratio is not None and r.gc_ratio >= 2
    assert any("as often as the recorded run" in note for note in r.notes())


def test_heap_profile_rate_samples_a_short_trace(tmp_path: Path) -> None:
    """A short trace gets a rate that samples about PROFILE_SAMPLES allocations; a rate
    that samples too few is kept, with a warning; a long trace keeps Go's default."""
    from goheap.trace import heap_profile_rate
    from goheap.trace.replay import FEW_PROFILE_SAMPLES, GO_MEM_PROFILE_RATE, PROFILE_SAMPLES, expected_profile_samples

    n = 40_000
    short = Trace(kind=np.zeros(n, np.uint8), addr=np.arange(n) * 64 + 0x1000, size=np.full(n, 64), type_id=np.full(n, -1), func_id=np.full(n, -1))
    rate, note = heap_profile_rate(short)
    assert rate == 256 and PROFILE_SAMPLES <= expected_profile_samples(short, rate) < 2 * PROFILE_SAMPLES
    assert "MemProfileRate=256, about 10,000 of the trace's 40,000" in note and "default 524288 would sample about 5)" in note
    rate, note = heap_profile_rate(short, 65536)
    assert rate == 65536 and "too few for a useful profile; --memprofilerate 256 would sample about 10,000" in note
    assert expected_profile_samples(short, 65536) < FEW_PROFILE_SAMPLES
    assert heap_profile_rate(short, 1) == (1, None) and expected_profile_samples(short, 0) == 0
    big = Trace(kind=np.zeros(3, np.uint8), addr=[0x1000, 0x2000000, 0x4000000], size=[1 << 40] * 3, type_id=[-1] * 3, func_id=[-1] * 3)
    assert heap_profile_rate(big, 1) == (1, None)  # every allocation sampled: nothing more to get
    many = Trace(kind=np.zeros(n, np.uint8), addr=np.arange(n) << 30, size=np.full(n, 1 << 30), type_id=np.full(n, -1), func_id=np.full(n, -1))
    assert heap_profile_rate(many) == (GO_MEM_PROFILE_RATE, None)
