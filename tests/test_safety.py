"""Regression tests: each way the public API could corrupt memory or lose a reachable object.

One test per reproducer of the audit (issue 11), through the public API only; the ones
that used to crash the interpreter run in a subprocess, so that a regression fails the
test instead of killing the run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import goheap

MB = 1 << 20


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; a crash is its exit status (a signal: negative)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def assert_ran(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip().endswith("ok"), proc.stdout


# ---------------------------------------------------------------- 1, 2: writes through a freed block


def test_a_freed_block_cannot_be_written_so_alloc_never_hands_out_foreign_memory() -> None:
    with goheap.Heap(arena_size=64 * MB, gcpercent=-1) as h:
        outside = bytearray(64)
        addr = np.frombuffer(outside, np.uint8).ctypes.data
        live = h.alloc(16)
        p = h.alloc(16)
        h.free(p)
        for target in (addr, live, p):  # foreign memory, a live block, itself (a free-list cycle)
            with pytest.raises(goheap.AddressError, match=f"{p:#x} is not in an allocated block"):
                h.store_word(p, 0, target)
        got = {h.alloc(16) for _ in range(3)}
        assert p in got and live not in got and addr not in got
        assert all(h.lookup(q) == (q, 16) for q in got)
        h.check()


def test_free_of_a_nogc_block_after_a_refused_store_does_not_hang() -> None:
    proc = run_python(
        """
        import goheap
        with goheap.Heap(arena_size=64 << 20) as h:
            p = h.alloc(16)
            h.free(p)
            try:
                h.store_word(p, 0, p)
            except goheap.AddressError:
                pass
            q = h.alloc(16, nogc=True)
            h.free(q)
            h.check()
        print("ok")
        """,
        timeout=120,
    )
    assert_ran(proc)


# ---------------------------------------------------------------- 3: roots from many threads


def test_roots_added_from_many_threads_are_distinct_and_keep_their_blocks() -> None:
    nthreads, per_thread = 8, 1500
    with goheap.Heap(arena_size=256 * MB, gcpercent=-1) as h:
        handles: list[list[tuple[int, int]]] = [[] for _ in range(nthreads)]

        def work(k: int) -> None:
            for _ in range(per_thread):
                with h.scope() as s:
                    p = s.alloc(32)
                    handles[k].append((h.roots.add(p), p))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(nthreads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pairs = [x for hs in handles for x in hs]
        assert len({k for k, _ in pairs}) == nthreads * per_thread
        h.set_gc_percent(100)
        h.gc()
        assert all(h.roots.get(k) == p and h.lookup(p) == (p, 32) for k, p in pairs)
        h.check()


# ---------------------------------------------------------------- 4: a stale type record


def test_an_untyped_block_in_a_freed_typed_slot_is_scanned_whole() -> None:
    with goheap.Heap(arena_size=64 * MB, gcpercent=100) as h:
        t = h.register_type("T", 16, pointer_offsets=(0,))  # word 1 is not a pointer
        with h.scope() as s:
            typed = s.alloc(16, type=t)
            h.free(typed)
            untyped = s.alloc(16)  # the same slot, LIFO
            assert untyped == typed and h.type_of(untyped) is None
            child = h.alloc(64)
            h.store_word(untyped, 1, child)  # a pointer where the old type had none
            h.gc()
            assert h.lookup(child) == (child, 64), "the child was freed: its parent was scanned with a stale type"
            h.check()


def test_a_typed_block_freed_before_its_settype_is_flushed_types_nothing() -> None:
    with goheap.Heap(arena_size=64 * MB, gcpercent=100) as h:
        t = h.register_type("T", 32, pointer_offsets=(0,))
        with h.scope() as s:
            typed = s.alloc(32, type=t)  # the settype is still buffered in this thread's cache
            h.free(typed)
            h.check()  # no pending settype names a free block
            untyped = s.alloc(32)
            assert untyped == typed
            child = h.alloc(64)
            h.store_word(untyped, 3, child)
            h.gc()
            assert h.type_of(untyped) is None and h.lookup(child) == (child, 64)


# ---------------------------------------------------------------- 5: allocation and rooting in one step


def test_scoped_allocations_survive_other_threads_collections() -> None:
    errors: list[BaseException] = []
    with goheap.Heap(arena_size=256 * MB, gcpercent=1) as h:

        def work() -> None:
            try:
                for _ in range(3000):
                    with h.scope() as s:
                        p = s.alloc(48)
                        h.store_word(p, 5, 7)  # still allocated: no collection can have freed it
                        h.free(p)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and h.read_mem_stats().num_gc > 0
        h.check()


# ---------------------------------------------------------------- 6: regions, finalizers, types


def test_a_region_keeps_its_buffer_exported() -> None:
    proc = run_python(
        """
        import mmap
        import goheap
        with goheap.Heap(arena_size=64 << 20) as h:
            m = mmap.mmap(-1, 4096)
            b = bytearray(4096)
            rm, rb = h.roots.add_region(m), h.roots.add_region(b)
            for what, act in (("mmap.close", m.close), ("bytearray resize", lambda: b.extend(b"x" * 65536))):
                try:
                    act()
                except BufferError:
                    pass
                else:
                    raise SystemExit(what + " was allowed under a root region")
            h.gc()
            h.roots.remove_region(rm)
            h.roots.remove_region(rb)
            m.close()
            b.extend(b"x" * 65536)  # let go: both may change now
            h.gc()
            h.check()
        print("ok")
        """
    )
    assert_ran(proc)


def test_a_finalizer_may_not_close_its_heap() -> None:
    proc = run_python(
        """
        import warnings
        import goheap
        h = goheap.Heap(arena_size=64 << 20, gcpercent=100)
        h.set_finalizer(h.alloc(32), lambda p: h.close())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h.gc()
            h.gc()
        assert any("may not close its heap" in str(w.message) for w in caught), caught
        assert not h.closed
        h.alloc(16)
        h.check()
        h.close()
        print("ok")
        """
    )
    assert_ran(proc)


def test_a_type_not_registered_with_this_heap_is_refused() -> None:
    with goheap.Heap(arena_size=64 * MB) as h, goheap.Heap(arena_size=64 * MB) as other:
        other.register_type("A", 16, (0,))
        forged = goheap.TypeInfo(7, "Forged", 16, (0, 8))
        foreign = other.register_type("B", 24, (8,))
        for t in (forged, foreign, "T", 3):
            with pytest.raises(goheap.InvalidValue, match="not a type registered with this heap"):
                h.alloc(24, type=t)
            with pytest.raises(goheap.InvalidValue):
                h.alloc_array(t, 2)
        h.gc()
        h.check()


# ---------------------------------------------------------------- 7: views past close


def test_a_view_kept_past_close_reaches_no_later_heap() -> None:
    proc = run_python(
        """
        import numpy as np
        import goheap
        h = goheap.Heap(arena_size=64 << 20)
        p = h.alloc(4096, noscan=True)
        v = h.view(p, np.int64)
        v[:] = 7
        h.close()
        h2 = goheap.Heap(arena_size=64 << 20)
        q = h2.alloc(4096, noscan=True)
        w = h2.view(q, np.int64)
        w[:] = 1
        v[:] = -1  # a stale view: it must not reach h2 (nor crash)
        assert (w == 1).all() and (v == -1).all()
        del v
        h2.check()
        h2.close()
        print("ok")
        """
    )
    assert_ran(proc)


def test_a_closed_heaps_memory_goes_once_its_views_and_runtime_go() -> None:
    from goheap._runtime.sysmem import FailingOS

    backend = FailingOS()
    h = goheap.Heap(arena_size=64 * MB, os=backend)
    v = h.view(h.alloc(64))
    rt = h.runtime
    h.close()
    assert not [c for c in backend.calls if c[0] == "free"], "unmapped while a view and the runtime live"
    del v
    assert not [c for c in backend.calls if c[0] == "free"]
    del rt
    assert [c for c in backend.calls if c[0] == "free"], "still mapped once nothing reaches it"


# ---------------------------------------------------------------- 8: close() under other threads


def test_calls_racing_close_get_heap_closed_and_nothing_else() -> None:
    for _ in range(3):
        h = goheap.Heap(arena_size=256 * MB, gcpercent=10)
        t = h.register_type("T", 16, (0,))
        seen: list[BaseException] = []
        started = threading.Barrier(7)

        def work(k: int) -> None:
            started.wait()
            try:
                while True:
                    with h.scope() as s:
                        p = s.alloc(48 if k % 2 else 16, type=None if k % 2 else t)
                        h.store_word(p, 1, k)
                        assert h.load_word(p, 1) == k
                        r = h.roots.add(p)
                        h.roots.remove(r)
                        if k == 0:
                            h.gc()
                        h.free(p)
            except goheap.HeapClosed:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                seen.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for th in threads:
            th.start()
        started.wait()
        threading.Event().wait(0.05)
        h.close()
        for th in threads:
            th.join()
        assert seen == []


def test_nb_called_from_python_with_bad_arguments_raises() -> None:
    proc = run_python(
        """
        import goheap
        from goheap import nb
        h = goheap.Heap(arena_size=64 << 20)
        rt, c = h.runtime, h.cache()
        p = h.alloc(16)
        bad = [
            lambda: nb.store(rt, 0x1000, 1),
            lambda: nb.alloc(rt, 10**7, 16),
            lambda: nb.load(rt, p + 16 * 4096),
            lambda: nb.stack_store(rt, c, -1, 5),
            lambda: nb.alloc_typed(rt, c, 16, 999, False),
            lambda: nb.store(rt, 1.5, 1),
            lambda: nb.store(h, p, 1),
        ]
        for call in bad:
            try:
                call()
            except goheap.HeapError:
                continue
            raise SystemExit("accepted")
        h.close()
        try:
            nb.load(rt, p)
        except goheap.HeapClosed:
            print("ok")
        """
    )
    assert_ran(proc)
