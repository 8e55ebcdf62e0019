"""close() against other threads' calls, close() from inside the heap's own calls, and what outlives it."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import goheap

MB = 1 << 20


class ClosingStream(io.StringIO):
    """A gctrace stream whose write closes the heap: a call of the heap is running it."""

    heap: goheap.Heap

    def write(self, s):
        self.heap.close()


def test_close_from_inside_a_call_of_the_same_heap_is_refused():
    stream = ClosingStream()
    with goheap.Heap(arena_size=64 * MB, gcpercent=100, gctrace=1, trace_stream=stream) as h:
        stream.heap = h
        with pytest.raises(goheap.HeapError, match="from inside one of the same heap's calls"):
            h.gc()
        h.trace_stream = None
        h.check()
    assert h.closed


def test_close_waits_for_a_finalizer_running_in_another_thread():
    h = goheap.Heap(arena_size=64 * MB, gcpercent=100)
    inside, events = threading.Event(), []

    def slow_finalizer(p):
        inside.set()
        time.sleep(0.3)
        events.append("finalizer done")

    def collect():
        try:
            h.gc()
            h.gc()
        except goheap.HeapClosed:
            events.append("closed")

    h.set_finalizer(h.alloc(64), slow_finalizer)
    t = threading.Thread(target=collect)
    t.start()
    inside.wait()
    h.close()
    events.append("close returned")
    t.join()
    assert events[0] == "finalizer done" and "close returned" in events  # close() returned after the finalizer


def test_two_threads_closing_at_once():
    h = goheap.Heap(arena_size=64 * MB)
    threads = [threading.Thread(target=h.close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert h.closed
    h.close()


def test_views_and_runtimes_outlive_close_harmlessly():
    h = goheap.Heap(arena_size=64 * MB)
    p = h.alloc(64)
    v = h.view(p, np.int64)
    v[:] = 3
    rt = h.runtime
    h.close()
    assert (v == 0).all()  # the pages went back to the OS; the mapping stayed
    v[1] = 9
    from goheap import nb

    with pytest.raises(goheap.HeapClosed):
        nb.load(rt, p)
    with pytest.raises(goheap.HeapClosed):
        nb.checked.store(rt, p, 1)


@pytest.mark.nojit
def test_reading_the_threads_stacks_never_collects_inside() -> None:
    # A collection that starts inside sys._current_frames() and frees a threading.local (a
    # dropped Heap's) deadlocked Python <= 3.11.8 (gh-106883): the close() of a heap hung.
    # The collection is made to start at the first allocation inside the call.
    script = textwrap.dedent("""
        import gc, threading
        from goheap._shell.lifetime import current_frames

        def deep(n):
            return deep(n - 1) if n else current_frames()

        for _ in range(200):
            holder = [threading.local()]
            holder[0].value = 1
            holder.append(holder)  # a cycle only the collector frees
            del holder
            gc.set_threshold(1)
            deep(20)
            gc.set_threshold(700)
        assert gc.isenabled()
        print("done")
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout == "done\n"
