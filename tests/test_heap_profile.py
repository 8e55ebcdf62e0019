"""Memory profiling (mprof.goc): MemProfileRate sampling, allocating stacks, heap profiles for go tool pprof."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import goheap
from goheap.report.pprof import Frame, read_profile, scale_heap_sample
from goheap.workloads import run_workload


def _heap(rate: int) -> goheap.Heap:
    return goheap.Heap(arena_size=64 << 20, gcpercent=100, virtual_clock=True, memprofilerate=rate)


def _by_leaf(heap) -> dict[str, goheap.report.pprof.HeapSample]:
    return {s.stack[0].function: s for s in heap.heap_profile()}


def allocate_nodes(heap, n, size=48):
    """n blocks, each rooted at once (an allocation may collect); returns their root handles."""
    out = []
    for _ in range(n):  # a loop, not a comprehension: that would be a frame of its own before Python 3.12
        out.append(heap.roots.add(heap.alloc(size)))
    return out


def test_rate_one_samples_every_allocation_at_its_python_stack():
    with _heap(1) as h:
        keep = allocate_nodes(h, 100)
        h.gc()
        s = _by_leaf(h)[f"{__name__}.allocate_nodes"]
        assert (s.alloc_objects, s.alloc_bytes, s.inuse_objects, s.inuse_bytes) == (100, 4800, 100, 4800)
        assert s.stack[0].filename == __file__
        assert s.stack[1].function == f"{__name__}.test_rate_one_samples_every_allocation_at_its_python_stack"
        for k in keep[:60]:
            h.roots.remove(k)
        h.gc()
        s = _by_leaf(h)[f"{__name__}.allocate_nodes"]
        assert (s.alloc_objects, s.inuse_objects, s.inuse_bytes) == (100, 40, 40 * 48)


def test_profile_is_as_of_the_last_collection():
    with _heap(1) as h:
        h.gc()
        h.set_gc_percent(-1)  # next_gc is tiny after collecting an empty heap: no collection meanwhile
        allocate_nodes(h, 10)
        s = _by_leaf(h)[f"{__name__}.allocate_nodes"]  # the bucket exists, its counts are recent
        assert (s.alloc_objects, s.alloc_bytes, s.inuse_objects) == (0, 0, 0)
        h.set_gc_percent(100)
        h.gc()
        assert _by_leaf(h)[f"{__name__}.allocate_nodes"].alloc_objects == 10


def test_rate_zero_and_noprofile_sample_nothing():
    with _heap(0) as h:
        h.gc()
        allocate_nodes(h, 50)
        h.gc()
        assert h.heap_profile() == [] and h.read_mem_stats().buck_hash_sys == 0
    with _heap(1) as h:
        h.gc()
        for _ in range(20):
            h.alloc(64, noprofile=True)
        h.gc()
        assert all(s.alloc_bytes != 20 * 64 for s in h.heap_profile())
        assert "test_heap_profile" not in " ".join(s.stack[0].function for s in h.heap_profile())


def test_set_mem_profile_rate_on_a_live_heap():
    with _heap(0) as h:
        assert h.set_mem_profile_rate(1) == 0 and h.mem_profile_rate == 1
        h.alloc(8)  # the countdown drawn with rate 0 is used up at once: sampled
        allocate_nodes(h, 30)
        h.gc()
        assert _by_leaf(h)[f"{__name__}.allocate_nodes"].alloc_objects == 30
        assert h.set_mem_profile_rate(0) == 1
        allocate_nodes(h, 30)
        h.gc()
        assert _by_leaf(h)[f"{__name__}.allocate_nodes"].alloc_objects == 30
        with pytest.raises(TypeError):
            h.set_mem_profile_rate(1.5)


def test_default_rate_estimates_the_total():
    """512 KB apart on average: the scaled estimate of 80 MB of 8 KB objects is close (about 160 samples)."""
    with _heap(512 * 1024) as h:
        assert h.mem_profile_rate == 512 * 1024
        h.roots.add(h.alloc(4 << 20, noscan=True, noprofile=True))  # live data: a collection per 4 MB, not per 8 KB
        for _ in range(10_000):
            h.alloc(8192, noscan=True)
        h.gc()
        s = _by_leaf(h)[f"{__name__}.test_default_rate_estimates_the_total"]
        assert 100 < s.alloc_objects < 220
        objects, nbytes = scale_heap_sample(s.alloc_objects, s.alloc_bytes, h.mem_profile_rate)
        assert nbytes == pytest.approx(10_000 * 8192, rel=0.2)
        assert objects == pytest.approx(10_000, rel=0.2)


def test_large_objects_are_always_sampled():
    with _heap(64 * 1024) as h:
        for _ in range(7):
            h.alloc(100_000, noscan=True)
        h.gc()
        s = _by_leaf(h)[f"{__name__}.test_large_objects_are_always_sampled"]
        assert (s.alloc_objects, s.alloc_bytes) == (7, 7 * 25 * 4096)


def test_profile_buckets_and_attribution():
    with _heap(1) as h:
        b = h.profile_bucket([("main.f", "f.go", 3), Frame("main.main", "f.go", 9), "runtime.main"])
        assert h.profile_bucket([("main.f", "f.go", 3), ("main.main", "f.go", 9), ("runtime.main",)]) == b
        other = h.profile_bucket(["main.g"])
        with h.attributing_allocations(b):
            h.alloc(100)
            with h.attributing_allocations(other):
                h.alloc(200)
            h.alloc(300)
        h.gc()
        prof = _by_leaf(h)
        assert prof["main.f"].stack == (Frame("main.f", "f.go", 3), Frame("main.main", "f.go", 9), Frame("runtime.main"))
        assert (prof["main.f"].alloc_objects, prof["main.f"].alloc_bytes) == (2, 112 + 320)
        assert prof["main.g"].alloc_bytes == 208


def test_write_heap_profile_decodes(tmp_path):
    with _heap(1) as h:
        keep = allocate_nodes(h, 10)
        h.gc()
        path = tmp_path / "heap.pb.gz"
        h.write_heap_profile(path)
        assert keep
    p = read_profile(path)
    types = [(p.string_table[t.type], p.string_table[t.unit]) for t in p.sample_type]
    assert types == [("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes")]
    assert p.period == 1
    names = {f.id: p.string_table[f.name] for f in p.function}
    leaf = {names[p.location[s.location_id[0] - 1].line[0].function_id]: list(s.value) for s in p.sample}
    assert leaf[f"{__name__}.allocate_nodes"] == [10, 480, 10, 480]


# ---------------------------------------------------------------- workloads, and the real pprof


@pytest.fixture(scope="module")
def binarytrees_profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("prof") / "binarytrees.pb.gz"
    run_workload(
        "binarytrees", ["10"], gcpercent=100, gctrace=0, virtual_clock=True, memprofilerate=4096,
        on_exit=lambda heap: heap.write_heap_profile(path),
    )
    return path


def test_workload_allocations_are_charged_to_its_go_functions(binarytrees_profile):
    p = read_profile(binarytrees_profile)
    names = {f.id: p.string_table[f.name] for f in p.function}
    files = {p.string_table[f.filename] for f in p.function}
    leaf_space: dict[str, int] = {}
    for s in p.sample:
        fn = names[p.location[s.location_id[0] - 1].line[0].function_id]
        leaf_space[fn] = leaf_space.get(fn, 0) + s.value[1]
    total = sum(leaf_space.values())
    # binary-trees allocates its nodes in bottomUp; the runtime, its spans' type arrays
    assert leaf_space["main.bottomUp"] > 0.75 * total
    assert leaf_space["main.bottomUp"] + leaf_space["runtime.settype_flush"] > 0.9 * total
    # the type arrays are charged as Go charges them: the runtime's frames, then the program's
    for s in p.sample:
        stack = [names[p.location[i - 1].line[0].function_id] for i in s.location_id]
        if stack[0] == "runtime.settype_flush":
            assert stack[1] in ("runtime.settype", "runtime.gc") and "main.bottomUp" in stack, stack
    assert {"main.main", "runtime.main"} <= set(names.values()) and "binarytrees.go" in files
    # the long-lived tree (main.go:49) is still in use at the end
    inuse_by_line: dict[int, int] = {}
    for s in p.sample:
        lines = [p.location[i - 1].line[0] for i in s.location_id]
        for line in lines:
            if names[line.function_id] == "main.main":
                inuse_by_line[line.line] = inuse_by_line.get(line.line, 0) + s.value[3]
    # (scaled from samples one per 4 KB on average: an estimate of its 2047 16-byte nodes)
    assert inuse_by_line[49] == pytest.approx(2047 * 16, rel=0.5)


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not on PATH")
def test_go_tool_pprof_lists_the_workloads_functions(binarytrees_profile, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "PPROF_TMPDIR": str(tmp_path), "PPROF_BINARY_PATH": str(tmp_path)}
    out = subprocess.run(
        ["go", "tool", "pprof", "-top", "-sample_index=alloc_space", str(binarytrees_profile)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()]
    functions = {row[-1] for row in rows if len(row) == 6}
    assert {"main.bottomUp", "main.main", "runtime.main"} <= functions, out.stdout
    table = rows[next(k for k, row in enumerate(rows) if row[:2] == ["flat", "flat%"]) + 1 :]
    top = table[0]  # the largest flat: bottomUp's nodes, then the runtime's type arrays for them
    assert top[-1] == "main.bottomUp" and float(top[1].rstrip("%")) > 75, out.stdout
    assert "runtime.settype_flush" in {row[-1] for row in table[1:3]}, out.stdout


def test_attribution_is_per_thread():
    import threading

    with _heap(1) as h:
        b = h.profile_bucket(["main.f"])
        seen = []

        def other_thread():
            h.alloc(64)  # not attributed: charged to this function's own stack
            seen.append(True)

        with h.attributing_allocations(b):
            t = threading.Thread(target=other_thread)
            t.start()
            t.join()
            h.alloc(32)
        h.gc()
        prof = _by_leaf(h)
        assert seen and prof["main.f"].alloc_bytes == 32
        assert prof[f"{__name__}.test_attribution_is_per_thread.<locals>.other_thread"].alloc_bytes == 64
