"""race.c: the race detector's hooks and its happens-before algorithm. See :mod:`goheap._runtime.malloc`.

The seed's race.c is a thin layer over ThreadSanitizer: the runtime calls ``racemalloc``
when mallocgc hands out a block, ``racefree`` when free takes one back, ``racemapshadow``
as the arena grows, and the compiler's instrumentation calls ``raceread``/``racewrite``
before each memory access and ``raceacquire``/``racerelease`` at each synchronisation.
goheap keeps those hooks under the same names and does the detection itself (Departure 15
in malloc.py), over the arrays that :mod:`goheap._runtime.raceshadow` lays out:

* *Threads.* A goroutine is a Python thread. Each gets a slot (0..254) the first time it
  reaches the detector, found by ``pthread_self`` (which is ``threading.get_ident``), so
  that ``goheap.nb.load(rt, addr)`` needs no thread argument. A finished thread's slot is
  reused last-finished-last, after every other free slot, and its new occupant continues
  the slot's clock, as ThreadSanitizer reuses thread ids.
* *Clocks.* Each slot has a vector clock ``race_vc[t]``; its own entry is the slot's
  current *epoch*. A release (unlock, send, thread start, ...) joins the thread's clock
  into the sync object's and then advances the thread's own entry; an acquire joins the
  sync object's clock into the thread's. A collection stops the world: a full barrier
  that joins every clock into every running thread's (race_stop_the_world).
* *Shadow.* FastTrack (Flanagan and Freund, PLDI 2009): each 8-byte heap word keeps the
  epoch of its last write ``W`` and of its last read ``R``, or, while reads by several
  threads are unordered, the set of their epochs (``SHARED | node``). An access by thread
  t races with the previous one when that epoch ``s:c`` is not ordered before it
  (``c > vc[t][s]``). An access in the thread's current epoch returns after one compare.
* *Free.* racefree checks the free as a write of the whole block, then marks every word
  ``FREED`` with the freeing epoch as ``W``; any later access is reported (use after
  free) until racemalloc gives the words a fresh shadow.
* *History.* Each time an access changes a shadow cell it is also written to its slot's
  history ring (address, clock, kind, stack), so that when a later access races with it
  the stack can be found again; when the ring has moved on, the report says so, as Go's
  does ("failed to restore the stack").
* *Reports.* A race goes to the queue ``race_reports`` with everything needed to print it
  (both goroutines and stacks, the block, who allocated it); the Python shell
  (:mod:`goheap.race`) formats, deduplicates and prints it. With halt_on_error, a race
  found in compiled code raises :class:`goheap.RaceError` before the access is done.
* *Overflow.* Clocks have 24 bits. When one would pass 2^24-1 the detector resets, as
  ThreadSanitizer does: it forgets every shadow cell and history row and restarts every
  clock at 1. Races between accesses on both sides of a reset are missed; none is invented.
"""

from __future__ import annotations

import platform
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..errors import RaceError
from ._jit import jit, jit_entry
from .handle import runtime_at
from .layout import (
    H_ARENA_START,
    H_ARENA_USED,
    SP_ELEMSIZE,
    SP_LIMIT,
    SP_SIZECLASS,
    runtime_ref,
)
from .mheap import mheap_lookup_maybe, span_base, span_bytes
from .units import UNIT_RACE, call_unit
from .raceshadow import (
    AR_ALLOC,
    AR_BASE,
    AR_FREE,
    AR_SIZE,
    CLOCK_MASK,
    CLOCK_MAX,
    FREED,
    HI_ADDR,
    HI_INFO,
    KIND_FREE,
    KIND_READ,
    KIND_WRITE,
    MAX_THREADS,
    OC_BIRTH,
    OC_GOID,
    OC_SLOT,
    RH_DROPPED,
    RH_HALT,
    RH_HANDLE,
    RH_HIST_LEN,
    RH_LAST_EPOCH,
    RH_LAST_PID,
    RH_LAST_REPORT,
    RH_LAST_SLOT,
    RH_NALLOCS,
    RH_NGOROUTINES,
    RH_NNODES,
    RH_NOCC,
    RH_NREPORTS,
    RH_NSLOTS,
    RH_QHEAD,
    RH_QTAIL,
    RH_RACES,
    RH_RESETS,
    RH_RS_FREE,
    RH_RS_LIVE,
    RH_RS_NEXT,
    RH_SHADOW_ADDR,
    RH_SHADOW_WORDS,
    RH_SYNC_HIGH,
    RR_ADDR,
    RR_ALLOC,
    RR_BASE,
    RR_FREE,
    RR_GLOBAL,
    RR_GOID,
    RR_KIND,
    RR_PREV_GOID,
    RR_PREV_KIND,
    RR_PREV_SLOT,
    RR_PREV_STACK,
    RR_SEQ,
    RR_SIZE,
    RR_SIZECLASS,
    RR_STACK,
    RS_EPOCHS,
    RS_NEXT,
    RS_WIDTH,
    SLOT_FINISHED,
    SLOT_RUNNING,
    SLOT_SHIFT,
    SN_FN,
    SN_HEAD,
    SN_NEXT,
    SN_PARENT,
    SPECIAL,
    STACK_BITS,
    STACK_PENDING,
    TS_GOID,
    TS_HPOS,
    TS_NODE,
    TS_PID,
    TS_QNEXT,
    TS_STATE,
    forget_memory,
)

RACED = 1  # in an access's result: a race was queued
LARGE_RESET_WORDS = 2048  # racemalloc hands whole shadow pages of a block this large back to the OS
FREE_CHECK_WORDS = 128  # racefree of a large block checks and marks its first 1 KB, as ThreadSanitizer does

if numba.config.DISABLE_JIT:

    def thread_self():
        return threading.get_ident()

elif platform.machine() in ("x86_64", "AMD64") and platform.system() == "Linux":

    @intrinsic
    def thread_self(typingctx):
        """pthread_self(), inline: glibc's THREAD_SELF is the word at %fs:0x10 (LLVM address space 257 is %fs)."""

        def codegen(context, builder, signature, args):
            fs = ir.PointerType(ir.IntType(64), addrspace=257)
            return builder.load(builder.inttoptr(ir.Constant(ir.IntType(64), 0x10), fs))

        return types.int64(), codegen

else:
    thread_self = types.ExternalFunction("pthread_self", types.int64())


# ================================================================ thread slots


@jit
def race_slot(rt):
    """The calling thread's slot, given one on first sight (-1 when all 255 are running)."""
    rh = rt.race_h
    pid = thread_self()
    if pid == rh[RH_LAST_PID]:
        return rh[RH_LAST_SLOT]
    thr = rt.race_thr
    slot = -1
    for t in range(rh[RH_NSLOTS]):
        if thr[t, TS_PID] == pid:
            slot = t
            break
    if slot < 0:
        slot = race_thread_new(rt, pid)
        if slot < 0:
            return -1
    rh[RH_LAST_PID] = pid
    rh[RH_LAST_SLOT] = slot
    rh[RH_LAST_EPOCH] = (slot << SLOT_SHIFT) | rt.race_vc[slot, slot]
    return slot


@jit
def race_thread_new(rt, pid):
    """racegostart: a slot for thread ``pid`` with a fresh clock and the next goroutine number."""
    rh = rt.race_h
    thr = rt.race_thr
    vc = rt.race_vc
    n = rh[RH_NSLOTS]
    if n < MAX_THREADS:
        t = n
        rh[RH_NSLOTS] = n + 1
        clock = 1
    else:
        t = rh[RH_QHEAD]
        if t < 0:
            return -1
        rh[RH_QHEAD] = thr[t, TS_QNEXT]
        if rh[RH_QHEAD] < 0:
            rh[RH_QTAIL] = -1
        clock = vc[t, t] + 1  # the slot's epochs stay a chain: accesses of the old occupant precede
    for s in range(vc.shape[1]):
        vc[t, s] = 0
    thr[t, TS_PID] = pid
    thr[t, TS_STATE] = SLOT_RUNNING
    goid = rh[RH_NGOROUTINES] + 1
    rh[RH_NGOROUTINES] = goid
    thr[t, TS_GOID] = goid
    thr[t, TS_NODE] = 0
    thr[t, TS_QNEXT] = -1
    if clock > CLOCK_MAX:
        race_reset(rt)  # every running slot restarts at 1; so does this one
    else:
        vc[t, t] = clock
        _occupy(rt, t, clock, goid)
    return t


@jit
def race_thread_end(rt, pid):
    """racegoend: thread ``pid`` has finished; its slot waits behind every other for reuse."""
    rh = rt.race_h
    thr = rt.race_thr
    for t in range(rh[RH_NSLOTS]):
        if thr[t, TS_PID] == pid:
            thr[t, TS_PID] = 0
            thr[t, TS_STATE] = SLOT_FINISHED
            thr[t, TS_QNEXT] = -1
            if rh[RH_QTAIL] >= 0:
                thr[rh[RH_QTAIL], TS_QNEXT] = t
            else:
                rh[RH_QHEAD] = t
            rh[RH_QTAIL] = t
            break
    if rh[RH_LAST_PID] == pid:
        rh[RH_LAST_PID] = 0
        rh[RH_LAST_SLOT] = -1
        rh[RH_LAST_EPOCH] = 0


@jit
def _occupy(rt, t, clock, goid):
    occ = rt.race_occ
    row = rt.race_h[RH_NOCC] % occ.shape[0]
    rt.race_h[RH_NOCC] += 1
    occ[row, OC_SLOT] = t
    occ[row, OC_BIRTH] = clock
    occ[row, OC_GOID] = goid


@jit
def goid_at(rt, slot, clock):
    """The goroutine that held ``slot`` at ``clock`` (0 if the log has moved on)."""
    occ = rt.race_occ
    n = rt.race_h[RH_NOCC]
    cap = occ.shape[0]
    for j in range(min(n, cap)):
        row = (n - 1 - j) % cap
        if occ[row, OC_SLOT] == slot and occ[row, OC_BIRTH] <= clock:
            return occ[row, OC_GOID]
    return 0


# ================================================================ clocks


@jit
def _tick(rt, t):
    """Advance slot t's own clock (after a release); past 2^24-1 the detector resets."""
    c = rt.race_vc[t, t] + 1
    if c > CLOCK_MAX:
        race_reset(rt)
    else:
        rt.race_vc[t, t] = c
        if rt.race_h[RH_LAST_SLOT] == t:
            rt.race_h[RH_LAST_EPOCH] = (t << SLOT_SHIFT) | c


@jit
def race_acquire(rt, t, row):
    """raceacquire: thread t's clock takes in the sync object's (vc[t] = vc[t] join L)."""
    vc = rt.race_vc
    sync = rt.race_sync
    for s in range(rt.race_h[RH_NSLOTS]):
        if sync[row, s] > vc[t, s]:
            vc[t, s] = sync[row, s]


@jit
def race_release(rt, t, row):
    """racereleasemerge: the sync object's clock takes in thread t's (L = L join vc[t]); t's epoch ends."""
    vc = rt.race_vc
    sync = rt.race_sync
    for s in range(rt.race_h[RH_NSLOTS]):
        if vc[t, s] > sync[row, s]:
            sync[row, s] = vc[t, s]
    _tick(rt, t)


@jit
def _race_stop_the_world(rt):
    """A collection stopped the world: every running thread's clock becomes the join of all.

    Everything any thread did before the collection happens before anything any thread
    does after it (finished threads' clocks are joined in too).
    """
    rh = rt.race_h
    vc = rt.race_vc
    thr = rt.race_thr
    n = rh[RH_NSLOTS]
    joined = np.zeros(vc.shape[1], np.int64)
    for t in range(n):
        for s in range(n):
            if vc[t, s] > joined[s]:
                joined[s] = vc[t, s]
    for t in range(n):
        if thr[t, TS_STATE] == SLOT_RUNNING:
            for s in range(n):
                vc[t, s] = joined[s]
    resets = rh[RH_RESETS]
    for t in range(n):
        if thr[t, TS_STATE] == SLOT_RUNNING and rh[RH_RESETS] == resets:
            _tick(rt, t)


@jit
def race_reset(rt):
    """Forget everything (a clock overflowed): shadow, histories and read sets cleared, every clock back to 1.

    Sync objects are cleared too, so nothing from before the reset orders anything after
    it; since no access from before is remembered either, no race can be invented.
    """
    rh = rt.race_h
    thr = rt.race_thr
    vc = rt.race_vc
    forget_memory(rh[RH_SHADOW_ADDR], rh[RH_SHADOW_WORDS] * 8)
    forget_memory(rt.race_gshadow.ctypes.data, rt.race_gshadow.size * 4)
    forget_memory(rt.race_hist.ctypes.data, rt.race_hist.size * 8)
    rh[RH_RS_NEXT] = 1
    rh[RH_RS_FREE] = 0
    rh[RH_RS_LIVE] = 0
    rh[RH_LAST_REPORT] = 0
    n = rh[RH_NSLOTS]
    for t in range(n):
        for s in range(vc.shape[1]):
            vc[t, s] = 0
        if thr[t, TS_STATE] == SLOT_RUNNING:
            vc[t, t] = 1
            _occupy(rt, t, 1, thr[t, TS_GOID])
    sync = rt.race_sync
    for row in range(rh[RH_SYNC_HIGH]):
        for s in range(sync.shape[1]):
            sync[row, s] = 0
    rh[RH_RESETS] += 1
    rh[RH_LAST_PID] = 0  # the next access finds its slot, and epoch, again
    rh[RH_LAST_SLOT] = -1
    rh[RH_LAST_EPOCH] = 0


# ================================================================ read sets (FastTrack's read-shared clocks)


@jit
def _rs_alloc(rt):
    """A cleared read-set node, or 0 when none is left."""
    rh = rt.race_h
    rs = rt.race_rs
    node = rh[RH_RS_FREE]
    if node != 0:
        rh[RH_RS_FREE] = rs[node, RS_NEXT]
    else:
        node = rh[RH_RS_NEXT]
        if node >= rs.shape[0]:
            return 0
        rh[RH_RS_NEXT] = node + 1
    for i in range(RS_WIDTH):
        rs[node, i] = 0
    rh[RH_RS_LIVE] += 1
    return node


@jit
def _rs_free(rt, node):
    rh = rt.race_h
    rs = rt.race_rs
    while node != 0:
        nxt = rs[node, RS_NEXT]
        rs[node, RS_NEXT] = rh[RH_RS_FREE]
        rh[RH_RS_FREE] = node
        rh[RH_RS_LIVE] -= 1
        node = nxt


@jit
def _rs_has(rt, node, e):
    rs = rt.race_rs
    while node != 0:
        for i in range(RS_EPOCHS):
            if rs[node, i] == e:
                return True
        node = rs[node, RS_NEXT]
    return False


@jit
def _rs_set(rt, node, t, e):
    """Record read epoch e of slot t in the set (replacing t's older one)."""
    rs = rt.race_rs
    last = node
    hole_node = 0
    hole = 0
    while node != 0:
        for i in range(RS_EPOCHS):
            x = rs[node, i]
            if x == 0:
                if hole_node == 0:
                    hole_node = node
                    hole = i
            elif (x >> SLOT_SHIFT) == t:
                rs[node, i] = e
                return
        last = node
        node = rs[node, RS_NEXT]
    if hole_node != 0:
        rs[hole_node, hole] = e
        return
    more = _rs_alloc(rt)
    if more == 0:
        rs[last, 0] = e  # out of nodes: forget one read (a race may be missed, none invented)
    else:
        rs[more, 0] = e
        rs[last, RS_NEXT] = more


@jit
def _unordered_access(rt, vc, t, w, r):
    """(epoch, kind) of an earlier access to a word that thread t's clock does not order
    before now (its last write first, then its reads), or (0, 0): what a write conflicts with."""
    if w != 0 and (w & CLOCK_MASK) > vc[t, w >> SLOT_SHIFT]:
        return w, KIND_WRITE
    if r != 0 and r < SPECIAL:
        if (r & CLOCK_MASK) > vc[t, r >> SLOT_SHIFT]:
            return r, KIND_READ
        return 0, 0
    if r != 0:
        return _rs_unordered(rt, r & CLOCK_MASK, t), KIND_READ
    return 0, 0


@jit
def _rs_unordered(rt, node, t):
    """A read epoch of the set not ordered before thread t's clock, or 0."""
    rs = rt.race_rs
    vc = rt.race_vc
    while node != 0:
        for i in range(RS_EPOCHS):
            x = rs[node, i]
            if x != 0 and (x & CLOCK_MASK) > vc[t, x >> SLOT_SHIFT]:
                return x
        node = rs[node, RS_NEXT]
    return 0


# ================================================================ history


@jit
def _record(rt, t, waddr, kind, clock, stack):
    """Append an access to slot t's history ring; returns its row."""
    thr = rt.race_thr
    pos = thr[t, TS_HPOS]
    thr[t, TS_HPOS] = pos + 1
    n = rt.race_h[RH_HIST_LEN]
    row = t * n + (pos & (n - 1))
    hist = rt.race_hist
    hist[row, HI_ADDR] = waddr
    hist[row, HI_INFO] = (stack << 32) | (clock << 2) | kind
    return row


@jit
def _history_stack(rt, slot, waddr, clock, kind):
    """The stack of slot's access (waddr, clock, kind), newest first; 0 if the ring moved on."""
    n = rt.race_h[RH_HIST_LEN]
    pos = rt.race_thr[slot, TS_HPOS]
    hist = rt.race_hist
    key = (clock << 2) | kind
    for j in range(min(pos, n)):
        row = slot * n + ((pos - 1 - j) & (n - 1))
        info = hist[row, HI_INFO]
        if (info & 0xFFFFFFFF) == key and hist[row, HI_ADDR] == waddr:
            return info >> 32
    return 0


@jit
def pack_event(goid, stack):
    """A goroutine and a stack value in one word (allocation records)."""
    return (goid << 40) | (stack & STACK_BITS)


@jit
def event_stack(word):
    v = word & STACK_BITS
    if v >= (1 << 39):
        v -= 1 << 40
    return v


# ================================================================ reports


@jit
def _block_of(rt, addr, rr, n):
    """Fill report n's block fields for heap address addr: the block (in use or freed) and its record."""
    h = rt.h
    start = h[H_ARENA_START]
    base = 0
    size = 0
    sizeclass = 0
    s = mheap_lookup_maybe(rt, addr)
    if s != 0:
        spans = rt.spans
        sstart = span_base(rt, s)
        sizeclass = spans[s, SP_SIZECLASS]
        if sizeclass == 0:
            base = sstart
            size = span_bytes(rt, s)
        elif addr < spans[s, SP_LIMIT]:
            size = spans[s, SP_ELEMSIZE]
            base = sstart + (addr - sstart) // size * size
    meta = rt.race_meta
    allocs = rt.race_allocs
    k = (addr - start) >> 3
    if base != 0:
        m = meta[(base - start) >> 3]
        if m != 0 and allocs[m - 1, AR_BASE] == base:
            rr[n, RR_ALLOC] = allocs[m - 1, AR_ALLOC]
            rr[n, RR_FREE] = allocs[m - 1, AR_FREE]
    else:
        # the span went back to the page heap: the nearest allocation record at or below addr
        j = k
        lowest = max(k - (1 << 20), 0)
        while j >= lowest:
            m = meta[j]
            if m != 0:
                b = allocs[m - 1, AR_BASE]
                sz = allocs[m - 1, AR_SIZE] >> 8
                if b == start + 8 * j and b <= addr < b + sz:
                    base = b
                    size = sz
                    sizeclass = allocs[m - 1, AR_SIZE] & 0xFF
                    rr[n, RR_ALLOC] = allocs[m - 1, AR_ALLOC]
                    rr[n, RR_FREE] = allocs[m - 1, AR_FREE]
                break
            j -= 1
    rr[n, RR_BASE] = base
    rr[n, RR_SIZE] = size
    rr[n, RR_SIZECLASS] = sizeclass


@jit
def _report(rt, t, addr, kind, stack, prev, prev_kind, gk):
    """Queue a race of thread t's access with the access of epoch ``prev``; raise it under halt_on_error.

    gk: 1 + the root handle for a global, 0 for a heap word. Returns the queue row, -1 if
    it was not queued (queue full, or the same race as the last one, from compiled code).
    """
    rh = rt.race_h
    rh[RH_RACES] += 1
    ps = prev >> SLOT_SHIFT
    pc = prev & CLOCK_MASK
    if stack != STACK_PENDING:
        # a loop in compiled code meets the same race at every word: queue it once
        sig = ((stack & 0xFFFFFFFF) << 16) | (ps << 4) | (kind << 2) | prev_kind
        sig = (sig << 1) | (1 if gk != 0 else 0)
        if sig == rh[RH_LAST_REPORT]:
            return -1
        rh[RH_LAST_REPORT] = sig
    rr = rt.race_reports
    n = rh[RH_NREPORTS]
    if n >= rr.shape[0]:
        rh[RH_DROPPED] += 1
        return -1
    for i in range(rr.shape[1]):
        rr[n, i] = 0
    rr[n, RR_ADDR] = addr
    rr[n, RR_KIND] = kind
    rr[n, RR_GOID] = rt.race_thr[t, TS_GOID]
    rr[n, RR_STACK] = stack
    rr[n, RR_PREV_KIND] = prev_kind
    rr[n, RR_PREV_SLOT] = ps
    rr[n, RR_PREV_GOID] = goid_at(rt, ps, pc)
    rr[n, RR_SEQ] = rh[RH_RACES]
    if gk != 0:
        rr[n, RR_GLOBAL] = gk
    else:
        _block_of(rt, addr, rr, n)
    if prev_kind == KIND_FREE:
        f = rr[n, RR_FREE]
        if f != 0:
            rr[n, RR_PREV_STACK] = event_stack(f)
    else:
        rr[n, RR_PREV_STACK] = _history_stack(rt, ps, addr & ~7, pc, prev_kind)
    rh[RH_NREPORTS] = n + 1
    if rh[RH_HALT] != 0 and stack != STACK_PENDING:
        raise RaceError(rh[RH_HANDLE], n)
    return n


# ================================================================ accesses (raceread, racewrite)


@jit
def race_access(rt, sh, k, addr, kind, stack, gk):
    """Check and record thread's access of ``kind`` to the word whose cells are sh[2k], sh[2k+1].

    stack: the access's stack value, 0 for "the thread's current one" (compiled callers),
    STACK_PENDING when a Python caller fills it in afterwards. Returns 0 when nothing was
    recorded, else RACED if a race was queued, | (history row + 1) << 2 when the access
    was written to the history with a pending stack.
    """
    t = race_slot(rt)
    if t < 0:
        return 0
    vc = rt.race_vc
    clock = vc[t, t]
    e = (t << SLOT_SHIFT) | clock
    w = sh[2 * k]
    r = sh[2 * k + 1]
    if kind == KIND_READ and r == e:
        return 0
    if kind == KIND_WRITE and w == e and r != FREED:
        return 0
    if stack == 0:
        stack = rt.race_thr[t, TS_NODE]
    if r == FREED:  # use after free: the free is the previous access
        _report(rt, t, addr, kind, stack, w, KIND_FREE, gk)
        return RACED
    flags = 0
    if kind == KIND_READ:
        if r >= SPECIAL and _rs_has(rt, r & CLOCK_MASK, e):
            return 0
        if w != 0 and (w & CLOCK_MASK) > vc[t, w >> SLOT_SHIFT]:
            _report(rt, t, addr, kind, stack, w, KIND_WRITE, gk)
            flags = RACED
        if r == 0 or (r < SPECIAL and (r & CLOCK_MASK) <= vc[t, r >> SLOT_SHIFT]):
            sh[2 * k + 1] = e
        elif r < SPECIAL:
            node = _rs_alloc(rt)
            if node == 0:
                sh[2 * k + 1] = e  # out of nodes: forget the older read
            else:
                rt.race_rs[node, 0] = r
                rt.race_rs[node, 1] = e
                sh[2 * k + 1] = SPECIAL | node
        else:
            _rs_set(rt, r & CLOCK_MASK, t, e)
    else:
        prev, prev_kind = _unordered_access(rt, vc, t, w, r)
        if prev != 0:
            _report(rt, t, addr, kind, stack, prev, prev_kind, gk)
            flags = RACED
        if r >= SPECIAL:
            _rs_free(rt, r & CLOCK_MASK)
        sh[2 * k] = e
        sh[2 * k + 1] = 0
    row = _record(rt, t, addr & ~7, kind, clock, stack)
    if stack == STACK_PENDING:
        flags |= (row + 1) << 2
    return flags


@jit
def raceread(rt, addr):
    """raceread: a load of the heap word holding addr by the calling thread (outside the arena: nothing).

    The common case, a word the same thread read already in its current epoch, is decided
    here in a few loads (small enough to be inlined into the caller); the rest in race_access,
    through the race detector's unit. rt is a RuntimeRef.
    """
    start = rt.h[H_ARENA_START]
    if start <= addr < rt.h[H_ARENA_USED]:
        k = (addr - start) >> 3
        rh = rt.race_h
        if thread_self() == rh[RH_LAST_PID] and rt.race_shadow[2 * k + 1] == rh[RH_LAST_EPOCH]:
            return
        call_unit(rt.code[UNIT_RACE], UNIT_RACE, rt, RACE_READ, addr, 0)


@jit
def racewrite(rt, addr):
    """racewrite: a store to the heap word holding addr by the calling thread (fast path as raceread's)."""
    start = rt.h[H_ARENA_START]
    if start <= addr < rt.h[H_ARENA_USED]:
        k = (addr - start) >> 3
        rh = rt.race_h
        sh = rt.race_shadow
        if thread_self() == rh[RH_LAST_PID] and sh[2 * k] == rh[RH_LAST_EPOCH] and sh[2 * k + 1] != FREED:
            return
        call_unit(rt.code[UNIT_RACE], UNIT_RACE, rt, RACE_WRITE, addr, 0)


# ================================================================ racemalloc, racefree


@jit
def _block(rt, s):
    """(size, size class) of the blocks of in-use span s."""
    sizeclass = rt.spans[s, SP_SIZECLASS]
    if sizeclass == 0:
        return span_bytes(rt, s), 0
    return rt.spans[s, SP_ELEMSIZE], sizeclass


@jit
def _clear_cells(rt, k0, nwords):
    """MemoryResetRange: words k0.. k0+nwords-1 have no history.

    Whole pages of shadow are handed back to the OS (they read back as zero) rather than
    read and cleared, so a large block costs no shadow until its words are touched. The
    read sets of words in those pages are not returned to the pool (they are few: reads
    shared by unsynchronised threads; a reset reclaims them).
    """
    sh = rt.race_shadow
    lo = k0
    hi = k0 + nwords
    if nwords >= LARGE_RESET_WORDS:
        first = (k0 + 511) & ~511  # 512 words: one page of shadow
        last = hi & ~511
        forget_memory(rt.race_h[RH_SHADOW_ADDR] + first * 8, (last - first) * 8)
        _clear_range(rt, sh, k0, first)
        lo = last
    _clear_range(rt, sh, lo, hi)


@jit
def _clear_range(rt, sh, lo, hi):
    for k in range(lo, hi):
        r = sh[2 * k + 1]
        if sh[2 * k] != 0 or r != 0:
            if r >= SPECIAL and r != FREED:
                _rs_free(rt, r & CLOCK_MASK)
            sh[2 * k] = 0
            sh[2 * k + 1] = 0


@jit
def _racemalloc(rt, v):
    """racemalloc: the block at v was just allocated: fresh shadow, and a record of who allocated it."""
    s = mheap_lookup_maybe(rt, v)
    if s == 0:
        return
    size, sizeclass = _block(rt, s)
    k0 = (v - rt.h[H_ARENA_START]) >> 3
    _clear_cells(rt, k0, size >> 3)
    t = race_slot(rt)
    goid = 0
    stack = 0
    if t >= 0:
        goid = rt.race_thr[t, TS_GOID]
        stack = rt.race_thr[t, TS_NODE]
    rh = rt.race_h
    allocs = rt.race_allocs
    m = rt.race_meta[k0]
    if m != 0 and allocs[m - 1, AR_BASE] == v:
        idx = m - 1  # the record of the block last allocated here: its time is over
    else:
        idx = rh[RH_NALLOCS] % allocs.shape[0]
        rh[RH_NALLOCS] += 1
    allocs[idx, AR_BASE] = v
    allocs[idx, AR_SIZE] = (size << 8) | sizeclass
    allocs[idx, AR_ALLOC] = pack_event(goid, stack)
    allocs[idx, AR_FREE] = 0
    rt.race_meta[k0] = idx + 1


@jit
def _racefree(rt, v, s):
    """racefree: the block at v (in span s) is being freed: a write of all of it, then marked freed.

    A large block is checked and marked over its first 1 KB only: ThreadSanitizer's limit
    (MemoryRangeFreed), which keeps a free from paging in shadow the program never touched.
    Called before free changes anything, so that a RaceError raised here (halt_on_error)
    leaves the block allocated and its shadow as it was.
    """
    t = race_slot(rt)
    if t < 0:
        return
    size, sizeclass = _block(rt, s)
    if sizeclass == 0 and size > FREE_CHECK_WORDS * 8:
        size = FREE_CHECK_WORDS * 8
    start = rt.h[H_ARENA_START]
    k0 = (v - start) >> 3
    sh = rt.race_shadow
    vc = rt.race_vc
    clock = vc[t, t]
    e = (t << SLOT_SHIFT) | clock
    stack = rt.race_thr[t, TS_NODE]
    for k in range(k0, k0 + (size >> 3)):
        w = sh[2 * k]
        r = sh[2 * k + 1]
        if r == FREED:
            continue
        prev, prev_kind = _unordered_access(rt, vc, t, w, r)
        if prev != 0:
            _report(rt, t, start + 8 * k, KIND_FREE, stack, prev, prev_kind, 0)
            break
    for k in range(k0, k0 + (size >> 3)):
        r = sh[2 * k + 1]
        if r >= SPECIAL and r != FREED:
            _rs_free(rt, r & CLOCK_MASK)
        sh[2 * k] = e
        sh[2 * k + 1] = FREED
    m = rt.race_meta[k0]
    if m != 0 and rt.race_allocs[m - 1, AR_BASE] == v:
        rt.race_allocs[m - 1, AR_FREE] = pack_event(rt.race_thr[t, TS_GOID], stack)


# ================================================================ compiled call stacks (racefuncenter, racefuncexit)


@jit
def race_node(rt, parent, fn):
    """The stack node (parent stack value, function fn), interned; 0 when the table is full."""
    nodes = rt.race_nodes
    cap = nodes.shape[0]
    b = ((parent * 1000003) ^ (fn * 31)) & (cap - 1)
    j = nodes[b, SN_HEAD]
    while j != 0:
        if nodes[j, SN_PARENT] == parent and nodes[j, SN_FN] == fn:
            return j
        j = nodes[j, SN_NEXT]
    rh = rt.race_h
    j = rh[RH_NNODES]
    if j >= cap:
        return 0
    rh[RH_NNODES] = j + 1
    nodes[j, SN_PARENT] = parent
    nodes[j, SN_FN] = fn
    nodes[j, SN_NEXT] = nodes[b, SN_HEAD]
    nodes[b, SN_HEAD] = j
    return j


@jit
def _racefuncenter(rt, fn):
    """The calling thread enters compiled function ``fn`` (an id from Heap.race_function)."""
    t = race_slot(rt)
    if t < 0:
        return
    node = race_node(rt, rt.race_thr[t, TS_NODE], fn)
    if node != 0:
        rt.race_thr[t, TS_NODE] = -node


@jit
def _racefuncexit(rt):
    t = race_slot(rt)
    if t < 0:
        return
    v = rt.race_thr[t, TS_NODE]
    if v < 0:
        rt.race_thr[t, TS_NODE] = rt.race_nodes[-v, SN_PARENT]


# ================================================================ the hooks the rest of the runtime calls, and their unit
#
# The detector is a unit (see units.py): loaded only by heaps in race mode, it links into
# nothing else, so a plain heap never compiles it. The hooks call it by address, with the
# operation first; each takes a RuntimeRef.

RACE_READ = 0
RACE_WRITE = 1
RACE_MALLOC = 2
RACE_FREE = 3
RACE_STOP_THE_WORLD = 4
RACE_FUNC_ENTER = 5
RACE_FUNC_EXIT = 6


@jit
def race_unit(rt, op, a, b):
    """The race detector's unit: hook ``op`` with its arguments a, b."""
    if op == RACE_READ or op == RACE_WRITE:
        race_access(rt, rt.race_shadow, (a - rt.h[H_ARENA_START]) >> 3, a, KIND_READ if op == RACE_READ else KIND_WRITE, 0, 0)
    elif op == RACE_MALLOC:
        _racemalloc(rt, a)
    elif op == RACE_FREE:
        _racefree(rt, a, b)
    elif op == RACE_STOP_THE_WORLD:
        _race_stop_the_world(rt)
    elif op == RACE_FUNC_ENTER:
        _racefuncenter(rt, a)
    elif op == RACE_FUNC_EXIT:
        _racefuncexit(rt)
    return 0


@jit
def racemalloc(rt, v):
    """racemalloc: the block at v was just allocated: fresh shadow, and a record of who allocated it."""
    call_unit(rt.code[UNIT_RACE], UNIT_RACE, runtime_ref(rt), RACE_MALLOC, v, 0)


@jit
def racefree(rt, v, s):
    """racefree: the block at v (in span s) is being freed (see _racefree)."""
    call_unit(rt.code[UNIT_RACE], UNIT_RACE, runtime_ref(rt), RACE_FREE, v, s)


@jit
def race_stop_the_world(rt):
    """A collection stopped the world: a full barrier (see _race_stop_the_world)."""
    call_unit(rt.code[UNIT_RACE], UNIT_RACE, runtime_ref(rt), RACE_STOP_THE_WORLD, 0, 0)


@jit
def racefuncenter(rt, fn):
    """The calling thread enters compiled function ``fn`` (an id from Heap.race_function)."""
    call_unit(rt.code[UNIT_RACE], UNIT_RACE, runtime_ref(rt), RACE_FUNC_ENTER, fn, 0)


@jit
def racefuncexit(rt):
    """The calling thread returns from the function of its last racefuncenter."""
    call_unit(rt.code[UNIT_RACE], UNIT_RACE, runtime_ref(rt), RACE_FUNC_EXIT, 0, 0)


# ================================================================ entry points for the Python shell (goheap.race)


@jit_entry
def entry_access(handle, addr, kind):
    """A checked load or store by Python code (Heap.load_word, ...): see race_access's result."""
    rt = runtime_at(handle)
    start = rt.h[H_ARENA_START]
    if not (start <= addr < rt.h[H_ARENA_USED]):
        return 0
    return race_access(rt, rt.race_shadow, (addr - start) >> 3, addr, kind, STACK_PENDING, 0)


@jit_entry
def entry_access_global(handle, k, addr, kind):
    """A checked access to root handle k (a global) at address addr."""
    rt = runtime_at(handle)
    return race_access(rt, rt.race_gshadow, k, addr, kind, STACK_PENDING, k + 1)


@jit_entry
def entry_global_fresh(handle, k):
    """Root handle k was just handed out: like racemalloc, it starts with no history."""
    rt = runtime_at(handle)
    rt.race_gshadow[2 * k] = 0
    rt.race_gshadow[2 * k + 1] = 0


@jit_entry
def entry_thread_self():
    """What compiled code takes for the calling thread's identity (must be threading.get_ident())."""
    return thread_self()


@jit_entry
def entry_slot(handle):
    """The calling thread's slot (registering it), -1 if none is free."""
    return race_slot(runtime_at(handle))


@jit_entry
def entry_thread_end(handle, pid):
    race_thread_end(runtime_at(handle), pid)


@jit_entry
def entry_set_stack(handle, value):
    """Set the calling thread's stack value; returns the old one (0 when it has no slot)."""
    rt = runtime_at(handle)
    t = race_slot(rt)
    if t < 0:
        return 0
    old = rt.race_thr[t, TS_NODE]
    rt.race_thr[t, TS_NODE] = value
    return old


@jit_entry
def entry_node(handle, parent, fn):
    return race_node(runtime_at(handle), parent, fn)


@jit_entry
def entry_acquire(handle, row):
    rt = runtime_at(handle)
    t = race_slot(rt)
    if t >= 0:
        race_acquire(rt, t, row)


@jit_entry
def entry_release(handle, row):
    rt = runtime_at(handle)
    t = race_slot(rt)
    if t >= 0:
        race_release(rt, t, row)


@jit_entry
def entry_sync_clear(handle, row):
    """Sync row ``row`` is handed out: clear its clock."""
    rt = runtime_at(handle)
    sync = rt.race_sync
    for s in range(sync.shape[1]):
        sync[row, s] = 0
    if row + 1 > rt.race_h[RH_SYNC_HIGH]:
        rt.race_h[RH_SYNC_HIGH] = row + 1


@jit_entry
def entry_stop_the_world(handle):
    _race_stop_the_world(runtime_at(handle))
