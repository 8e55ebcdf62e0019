"""The compiled inner loops of the execution-trace reader: batches, events, one order, rows.

See :mod:`goheap.trace.exectrace` for the format and :mod:`.reader` around these. Two
calls do the work: :func:`frame_batches` finds the batches in the bytes read so far, and
:func:`generation_rows` turns one generation's event batches into goheap's rows in a
single call (decode the events, order them as Go's reader does, look their spans up).

The loops run over numpy arrays only and report problems through an ``err`` array (a code
and where), never by raising, so the Python side can name the byte offset; every length
they read is checked against the buffer's end, so no input can make them read or write
out of bounds. The large arrays they fill are the caller's (numpy's memory: see
:func:`new_scratch`), checked for room.

Interpreted (``NUMBA_DISABLE_JIT=1``) they give the same results, slowly.
"""

from __future__ import annotations

import numpy as np

from goheap._runtime._jit import jit
from goheap.trace.exectrace.format import (
    EV_EVENT_BATCH,
    EV_END_OF_GENERATION,
    EV_EXPERIMENTAL_BATCH,
    EV_GC_BEGIN,
    EV_GC_END,
    EV_GO_SYSCALL_END_BLOCKED,
    EV_HEAP_ALLOC,
    EV_HEAP_GOAL,
    EV_HEAP_OBJECT,
    EV_HEAP_OBJECT_ALLOC,
    EV_HEAP_OBJECT_FREE,
    EV_PROC_START,
    EV_PROC_STATUS,
    EV_PROC_STOP,
    EV_SPAN,
    EV_SPAN_ALLOC,
    EV_SPAN_FREE,
    EXPERIMENTAL,
    MAX_BATCH_SIZE,
    MAX_STRING_SIZE,
)
from goheap.trace.tracefile import KIND_ALLOC, KIND_FREE, KIND_GC

__all__ = ["frame_batches", "generation_rows", "new_scratch", "new_table", "rows_bound", "scratch_bound", "type_table"]

_U7F = np.uint64(0x7F)


@jit
def _uvarint(buf, p, end):
    """The unsigned LEB128 varint at ``buf[p]``: (value, position after it, status).

    status 0: read; 1: ``end`` comes first (position: ``p``); 2: longer than 64 bits
    (position: its last byte read).
    """
    v = np.uint64(0)
    shift = 0
    q = p
    while True:
        if q >= end:
            return v, p, 1
        c = buf[q]
        if shift == 63 and c > 1:
            return v, q, 2
        v |= (np.uint64(c) & _U7F) << np.uint64(shift)
        q += 1
        if c < 0x80:
            return v, q, 0
        shift += 7


# ---------------------------------------------------------------- batches

#: The columns of a row of frame_batches' table (uint64).
BATCH_START, BATCH_EXP, BATCH_GEN, BATCH_M, BATCH_TS, BATCH_DATA, BATCH_LEN, BATCH_FIRST = range(8)
#: BATCH_FIRST of an empty batch.
NO_FIRST_BYTE = 256

# frame_batches' state (uint64): why it stopped, where (an index in buf), a value, and the
# generation being framed (in and out; 0: the next batch's)
ST_STOP, ST_WHERE, ST_VALUE, ST_GEN = range(4)
FRAME_MORE = 0  # the bytes end inside a batch or after the last one (value: its data's index + 1, or 0)
FRAME_END_OF_GENERATION = 1  # an EndOfGeneration byte (format 1.26), consumed
FRAME_NEXT_GENERATION = 2  # a whole batch of another generation (value), not consumed
FRAME_FULL = 3  # the table is full
FRAME_BAD_KIND = 4  # a byte that starts no batch (value)
FRAME_BAD_VARINT = 5  # a header varint longer than 64 bits (where: its last byte)
FRAME_TOO_LONG = 6  # a batch longer than MAX_BATCH_SIZE (value: its length)
FRAME_GENERATION_0 = 7


@jit
def frame_batches(buf, pos, end, base, version, table, n, st):
    """Frame the batches of ``buf[pos:end]`` into ``table`` rows n.. ; returns the new n.

    Each row: the batch's offset in the trace (``buf[i]`` is byte ``base + i``), its
    experiment (0 for an event batch), generation, thread, timestamp, the offset of its
    data, its length and its first byte. Stops (``st``) at the first batch of a generation
    other than ``st[ST_GEN]``, at an EndOfGeneration, where the bytes run out, when the
    table is full, or at a corrupt header. Checks in the order a reader going byte by byte
    meets them: the batch's kind, its experiment byte, the four header varints, the length,
    the generation, then whether the data is all there.
    """
    cap = table.shape[0]
    fields = np.zeros(4, np.uint64)
    while True:
        st[ST_WHERE] = pos
        st[ST_VALUE] = 0
        if pos >= end:
            st[ST_STOP] = FRAME_MORE
            return n
        kind = buf[pos]
        if kind == EV_END_OF_GENERATION and version >= 26:
            st[ST_STOP] = FRAME_END_OF_GENERATION
            st[ST_WHERE] = pos + 1
            return n
        if kind != EV_EVENT_BATCH and not (kind == EV_EXPERIMENTAL_BATCH and version >= 23):
            st[ST_STOP] = FRAME_BAD_KIND
            st[ST_VALUE] = kind
            return n
        p = pos + 1
        exp = 0
        if kind == EV_EXPERIMENTAL_BATCH:
            if p >= end:
                st[ST_STOP] = FRAME_MORE
                return n
            exp = buf[p]
            p += 1
        for i in range(4):
            v, p, status = _uvarint(buf, p, end)
            if status == 1:
                st[ST_STOP] = FRAME_MORE
                return n
            if status == 2:
                st[ST_STOP] = FRAME_BAD_VARINT
                st[ST_WHERE] = p
                return n
            fields[i] = v
        size = fields[3]
        if size > np.uint64(MAX_BATCH_SIZE):
            st[ST_STOP] = FRAME_TOO_LONG
            st[ST_VALUE] = size
            return n
        if fields[0] == np.uint64(0):
            st[ST_STOP] = FRAME_GENERATION_0
            return n
        if p + np.int64(size) > end:
            st[ST_STOP] = FRAME_MORE
            st[ST_VALUE] = p + 1
            return n
        if st[ST_GEN] == np.uint64(0):
            st[ST_GEN] = fields[0]
        elif fields[0] != st[ST_GEN]:
            st[ST_STOP] = FRAME_NEXT_GENERATION
            st[ST_VALUE] = fields[0]
            return n
        if n >= cap:
            st[ST_STOP] = FRAME_FULL
            return n
        table[n, BATCH_START] = base + pos
        table[n, BATCH_EXP] = exp
        table[n, BATCH_GEN] = fields[0]
        table[n, BATCH_M] = fields[1]
        table[n, BATCH_TS] = fields[2]
        table[n, BATCH_DATA] = base + p
        table[n, BATCH_LEN] = size
        table[n, BATCH_FIRST] = buf[p] if size > np.uint64(0) else NO_FIRST_BYTE
        n += 1
        pos = p + np.int64(size)


# ---------------------------------------------------------------- type tables

# type_table's errors (err[0]); err[1] is an index in the batch, err[2] a value
TYPES_SHORT = 1  # a varint runs past the end of the batch (err[1]: the end)
TYPES_VARINT = 2  # a varint longer than 64 bits (err[1]: just after its tenth byte)
TYPES_NAME = 3  # a name longer than MAX_STRING_SIZE or past the batch (err[1]: just after its length, err[2]: where that begins)


@jit
def type_table(data, err):
    """The entries of an AllocFree type-table batch (``data``, from its kind byte): rows of
    (type id, or -1 for an id no event can name (past MAX_ID), its name's index in
    ``data``, the name's length). Of each entry's five varints (id, address, size, bytes of
    pointers, name length) the id and the length are kept.
    """
    end = data.shape[0]
    out = np.empty((end // 6 + 1, 3), np.int64)  # an entry takes at least 6 bytes
    pos: int | np.int64 = 1  # (annotations of locals are not compiled: numba types them itself)
    n = 0
    while pos < end:
        tid: int | np.int64 = -1
        for i in range(5):
            start = pos
            v = np.uint64(0)
            shift = 0
            big = False
            while True:
                if pos >= end:
                    err[0] = TYPES_SHORT
                    err[1] = pos
                    return out[:n]
                c = data[pos]
                pos += 1
                if shift == 63 and (c & 0x7F) > 1:
                    big = True  # past 2**64 - 1
                v |= (np.uint64(c) & _U7F) << np.uint64(shift)
                if c < 0x80:
                    break
                shift += 7
                if shift > 63:
                    err[0] = TYPES_VARINT
                    err[1] = pos
                    return out[:n]
            if i == 0 and not big and v < np.uint64(MAX_ID):
                tid = np.int64(v)
            if i == 4:
                if big or v > np.uint64(MAX_STRING_SIZE) or pos + np.int64(v) > end:
                    err[0] = TYPES_NAME
                    err[1] = pos
                    err[2] = start
                    return out[:n]
                out[n, 0] = tid
                out[n, 1] = pos
                out[n, 2] = np.int64(v)
                n += 1
                pos += np.int64(v)
    return out[:n]


# ---------------------------------------------------------------- events

# generation_rows' error codes (err[0]); err[1] is the index in buf, err[2] a value
ERR_NONE = 0
ERR_KIND = 1  # a kind byte this version has no event for, or not allowed in an event batch
ERR_VARINT = 2  # a varint longer than 10 bytes or past 2**64 - 1
ERR_SHORT = 3  # an event that runs past the end of its batch
ERR_NO_FREQUENCY = 4  # events, but the generation has no frequency: no clock
ERR_NO_INFO = 5  # a heap event, but no AllocFree info batch yet (err[1]: the first)
ERR_OUT_SHORT = 6  # the caller's row arrays are shorter than rows_bound (a bug, not the trace's)
ERR_SCRATCH_FULL = 7  # not the trace's: more kept events than scratch_bound guessed
ERR_NO_SPAN = 11  # an object in no span the trace described
ERR_BIG_SPAN = 12  # a span of more pages than any heap holds
ERR_BAD_CLASS = 13  # a size class the version's table does not have
ERR_BAD_ID = 14  # an object or span id past any address
ERR_TAIL = 15  # an object in the tail a span leaves after its last slot

#: The events generation_rows keeps for the merge (the rest are only counted): the heap's,
#: and the ones that say which P a thread holds.
KEPT = (EV_SPAN, EV_SPAN_ALLOC, EV_SPAN_FREE, EV_HEAP_OBJECT, EV_HEAP_OBJECT_ALLOC, EV_HEAP_OBJECT_FREE,
        EV_GC_BEGIN, EV_GC_END, EV_HEAP_ALLOC, EV_HEAP_GOAL, EV_PROC_STATUS, EV_PROC_START, EV_PROC_STOP,
        EV_GO_SYSCALL_END_BLOCKED)  # fmt: skip
#: At one timestamp, these come before the rest (see _merge).
FREES = (EV_SPAN_FREE, EV_HEAP_OBJECT_FREE)

_PROC_RUNNING = 1
_PROC_SYSCALL = 3
_SEQ_BITS = 40
_MAX_P = 1 << 16  # P ids are below GOMAXPROCS; larger ones (a corrupt trace) wrap


@jit
def _proc_event(kind, args, curp, curseq, m):
    """A thread's change of P: which it holds (curp, -1 for none) and in which tenure (curseq)."""
    if kind == EV_PROC_STATUS:
        if args[2] == np.uint64(_PROC_RUNNING) or args[2] == np.uint64(_PROC_SYSCALL):
            curp[m] = np.int64(args[1] & np.uint64(_MAX_P - 1))
            curseq[m] = 0
    elif kind == EV_PROC_START:
        curp[m] = np.int64(args[1] & np.uint64(_MAX_P - 1))
        curseq[m] = np.int64(args[2] & np.uint64((1 << _SEQ_BITS) - 1))
    else:
        curp[m] = -1


#: The scratch arrays of generation_rows, kept from one generation to the next: the kept
#: events' times, kinds and arguments, the runs' first events, keys and groups, and two
#: arrays of event indices for the merge.
SCRATCH_DTYPES = (np.uint64, np.uint8, np.uint64, np.int64, np.int64, np.int64, np.int64, np.int64)


def new_scratch(events: int) -> tuple:
    """Scratch arrays for :func:`generation_rows`, room for ``events`` kept events.

    numpy's, not numba's: numpy asks the kernel for huge pages for large arrays, which
    makes first touching them about ten times cheaper.
    """
    return tuple(np.empty((events, 3) if i == 2 else events, dt) for i, dt in enumerate(SCRATCH_DTYPES))


def scratch_bound(bstart: np.ndarray, bend: np.ndarray) -> int:
    """Room for the kept events of these batches, usually: they take 4 to 8 bytes."""
    return int((bend - bstart).sum()) // 4 + 64


@jit
def _decode(buf, bstart, bend, bts, bm, n_m, nargs, timed, keep, counts, scratch, err):
    """Decode the event batches (in file order) and key each kept event by its P's run.

    Returns (n, nseg, max_ts): in the scratch arrays, for each of the n kept events its
    time (the batch's timestamp plus the deltas so far), kind and first three arguments
    after the time delta, and the nseg *runs*: stretches of events of one batch with one
    key ``(P, the P's sequence number of the tenure the thread held it in)`` (see
    :func:`_merge`). A thread holds a P from a ProcStatus (running or in a syscall) or
    ProcStart to a ProcStop or a blocked syscall end; events of a thread without a P get a
    group of that thread's own. An event's place in ``buf`` is not kept
    (:func:`_kept_event_at` finds it again for an error message). Stops with err[0]
    ERR_SCRATCH_FULL if the scratch arrays are too short.
    """
    ts_out, kind_out, args_out, seg_start, seg_key, seg_group, by_run, order = scratch
    cap = ts_out.shape[0]
    curp = np.full(n_m, -1, np.int64)
    curseq = np.zeros(n_m, np.int64)
    args = np.zeros(6, np.uint64)
    n = 0
    nseg = 0
    max_ts = np.uint64(0)
    for b in range(bstart.shape[0]):
        m = bm[b]
        end = bend[b]
        pos = bstart[b]
        ts = np.uint64(bts[b])
        last_key = -1
        group, key = _run_key(curp, curseq, m)
        while pos < end:
            kind = buf[pos]
            na = nargs[kind]
            if na <= 0 or timed[kind] == 0:
                err[0] = ERR_KIND
                err[1] = pos
                err[2] = kind
                return n, nseg, max_ts
            p = pos + 1
            for i in range(na):
                c = buf[p] if p < end else 0x80
                if c < 0x80:  # most arguments are one byte
                    args[i] = np.uint64(c)
                    p += 1
                    continue
                v, p, status = _uvarint(buf, p, end)
                if status != 0:
                    err[0] = ERR_SHORT if status == 1 else ERR_VARINT
                    err[1] = pos
                    err[2] = kind
                    return n, nseg, max_ts
                args[i] = v
            ts += args[0]
            counts[kind] += 1
            if keep[kind] != 0:
                if n >= cap:
                    err[0] = ERR_SCRATCH_FULL
                    return n, nseg, max_ts
                if kind == EV_PROC_STATUS or kind == EV_PROC_START or kind == EV_PROC_STOP or kind == EV_GO_SYSCALL_END_BLOCKED:
                    _proc_event(kind, args, curp, curseq, m)
                    group, key = _run_key(curp, curseq, m)
                if key != last_key:
                    seg_start[nseg] = n
                    seg_key[nseg] = key
                    seg_group[nseg] = group
                    nseg += 1
                    last_key = key
                ts_out[n] = ts
                kind_out[n] = kind
                args_out[n, 0] = args[1]
                args_out[n, 1] = args[2]
                args_out[n, 2] = args[3]
                if ts > max_ts:
                    max_ts = ts
                n += 1
            pos = p
    return n, nseg, max_ts


@jit
def _run_key(curp, curseq, m):
    """(group, key) of thread ``m``'s events now: its P and tenure, or a group of its own.

    The Ps' groups come first, then one per thread without a P.
    """
    if curp[m] >= 0:
        return curp[m], (curp[m] << _SEQ_BITS) | curseq[m]
    return _MAX_P + m, (_MAX_P + m) << _SEQ_BITS


@jit
def _kept_event_at(buf, bstart, bend, nargs, keep, j):
    """The index in ``buf`` of kept event ``j`` (in file order) of batches that decoded."""
    for b in range(bstart.shape[0]):
        pos = bstart[b]
        while pos < bend[b]:
            kind = buf[pos]
            p = pos + 1
            for _ in range(nargs[kind]):
                _, p, _ = _uvarint(buf, p, bend[b])
            if keep[kind] != 0:
                if j == 0:
                    return pos
                j -= 1
            pos = p
    return -1


@jit
def _merge(ts, kind, seg_start, seg_key, seg_group, n, nseg, is_free, by_run, out):
    """The kept events of all threads in one order, as Go's own reader orders them.

    Each thread (M) writes its events in order into its own batches, but their timestamps
    are not enough to merge them: a thread that writes faster than the clock ticks (64 ns
    on amd64) bumps each event's time by one tick, so a burst (a sweep reporting thousands
    of frees) runs ahead of the clock, and the next batch starts behind where the last one
    ended. What orders events that touch the same memory is the P: allocating and sweeping
    need one, and each P passes from thread to thread with a sequence number
    (ProcStatus/ProcStart). So: each P's events, run by run in sequence order (a run before
    the later runs of the same key), each run in its thread's order; then the Ps (and the
    events of threads without a P) merged by the time of each one's next event; at one
    time, frees first, then the lower group.

    Returns the event indices in that order: the first n entries of ``by_run`` or ``out``
    (both of at least n entries).
    """
    perm = np.argsort(seg_key[:nseg], kind="mergesort")
    starts = np.empty(nseg + 1, np.int64)  # where each group begins in by_run
    ngroups = 0
    o = 0
    for k in range(nseg):
        s = perm[k]
        if k == 0 or seg_group[s] != seg_group[perm[k - 1]]:
            starts[ngroups] = o
            ngroups += 1
        stop = seg_start[s + 1] if s + 1 < nseg else n
        for j in range(seg_start[s], stop):
            by_run[o] = j
            o += 1
    starts[ngroups] = n
    if ngroups <= 1:
        return by_run
    head = starts[:ngroups].copy()
    heap = np.arange(ngroups)
    # a binary min-heap of groups keyed by their head event
    for start in range(ngroups // 2 - 1, -1, -1):
        _sift_down(heap, start, ngroups, head, by_run, ts, kind, is_free)
    size = ngroups
    for o in range(n):
        g = heap[0]
        out[o] = by_run[head[g]]
        head[g] += 1
        if head[g] == starts[g + 1]:
            size -= 1
            heap[0] = heap[size]
        if size > 0:
            _sift_down(heap, 0, size, head, by_run, ts, kind, is_free)
    return out


@jit
def _before(a, b, head, by_run, ts, kind, is_free):
    ea = by_run[head[a]]
    eb = by_run[head[b]]
    if ts[ea] != ts[eb]:
        return ts[ea] < ts[eb]
    fa = is_free[kind[ea]]
    fb = is_free[kind[eb]]
    if fa != fb:
        return fa > fb
    return a < b


@jit
def _sift_down(heap, i, size, head, by_run, ts, kind, is_free):
    while True:
        c = 2 * i + 1
        if c >= size:
            return
        if c + 1 < size and _before(heap[c + 1], heap[c], head, by_run, ts, kind, is_free):
            c += 1
        if _before(heap[c], heap[i], head, by_run, ts, kind, is_free):
            t = heap[c]
            heap[c] = heap[i]
            heap[i] = t
            i = c
        else:
            return


# ---------------------------------------------------------------- the span table

#: The most pages a span may have (a 128 GB object); more is a corrupt trace.
MAX_SPAN_PAGES = 1 << 24
#: The largest span or object id accepted: ids are offsets from the heap's lowest address.
MAX_ID = 1 << 52
#: A small-object span has at most this many pages (Go's MaxSizeClassNPages).
MAX_SMALL_SPAN_PAGES = 10
_EMPTY = -1
_GONE = -2
#: The columns of a span table row: its first page (or _EMPTY, _GONE), pages, kind and class.
_PAGE, _NPAGES, _KINDCLASS = 0, 1, 2


def new_table(rows: int = 1 << 10) -> np.ndarray:
    """An empty span table (or set of tiny blocks: only its first column is used)."""
    table = np.zeros((rows, 3), np.int64)
    table[:, _PAGE] = _EMPTY
    return table


@jit
def _table_find(table, key):
    """The row of ``key`` in the table, or -1 (linear probing; _EMPTY ends a chain)."""
    mask = table.shape[0] - 1
    i = (key * 0x9E3779B1) & mask
    while True:
        k = table[i, _PAGE]
        if k == key:
            return i
        if k == _EMPTY:
            return -1
        i = (i + 1) & mask


@jit
def _table_put(table, key, npages, kindclass):
    """Put ``key`` in the table (replacing its row if there). Returns 1 if a row was taken."""
    mask = table.shape[0] - 1
    i = (key * 0x9E3779B1) & mask
    free = -1
    while True:
        k = table[i, _PAGE]
        if k == key:
            table[i, _NPAGES] = npages
            table[i, _KINDCLASS] = kindclass
            return 0
        if k == _GONE and free < 0:
            free = i
        if k == _EMPTY:
            if free < 0:
                free = i
            table[free, _PAGE] = key
            table[free, _NPAGES] = npages
            table[free, _KINDCLASS] = kindclass
            return 1
        i = (i + 1) & mask


@jit
def _table_full(table, state):
    """Whether half the table's rows are taken (used or gone; ``state`` = (used, gone))."""
    return 2 * (state[0] + state[1] + 1) > table.shape[0]


@jit
def _table_rehashed(table, state):
    """The live rows of a full table in a fresh one (twice the size unless most are gone)."""
    rows = table.shape[0]
    capacity = rows * (2 if 4 * state[0] > rows else 1)
    fresh = np.zeros((capacity, 3), np.int64)
    fresh[:, _PAGE] = _EMPTY
    for i in range(rows):
        if table[i, _PAGE] >= 0:
            _table_put(fresh, table[i, _PAGE], table[i, _NPAGES], table[i, _KINDCLASS])
    state[1] = 0
    return fresh


# ---------------------------------------------------------------- rows

#: generation_rows' counters (persisting across generations): tiny allocations folded,
#: snapshot objects, span events of non-heap spans, objects dropped for want of a span (only
#: when ``lenient``: the last generation of a trace cut short misses the batches of some
#: threads), rows of each kind, bytes allocated and freed, the last row's time, the latest
#: time of any kept event, the span table's and the tiny set's (used, gone) rows, and the
#: largest row size and step of the rows' time (from the row before; the first's from 0).
(C_TINY, C_SNAPSHOT, C_NONHEAP_SPANS, C_DROPPED, C_ALLOCS, C_FREES, C_GCS, C_ALLOC_BYTES, C_FREE_BYTES,
 C_LAST_ROW_NS, C_LAST_NS, C_SPANS_USED, C_SPANS_GONE, C_TINY_USED, C_TINY_GONE, C_MAX_SIZE, C_MAX_TIME_STEP,
 N_COUNTERS) = range(18)  # fmt: skip


@jit
def _ns(ts, t0, ns_per_tick):
    """A timestamp in nanoseconds since ``t0`` (rounded half to even; never negative)."""
    v = np.rint((np.float64(ts) - t0) * ns_per_tick)
    return np.int64(v) if v > 0 else np.int64(0)


@jit
def _type_of(type_ids, type_gids, tid):
    """The trace-wide index of this generation's type ``tid`` (sorted ``type_ids``), or -1."""
    if tid == 0:
        return np.int32(-1)
    lo = 0
    hi = type_ids.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if type_ids[mid] < tid:
            lo = mid + 1
        else:
            hi = mid
    if lo < type_ids.shape[0] and type_ids[lo] == tid:
        return type_gids[lo]
    return np.int32(-1)


@jit
def generation_rows(
    buf, bstart, bend, bts, bm, n_m, nargs, timed, keep, is_free, counts, have_frequency, have_info,
    t0, ns_per_tick, min_addr, align, page_size, class_size, tiny_class, type_ids, type_gids, lenient,
    spans, tiny, scratch, out, counters, err,
):  # fmt: skip
    """One generation's event batches (``buf[bstart[b]:bend[b]]``, in file order, of thread
    ``bm[b]`` < ``n_m``, timestamp ``bts[b]``) as goheap rows, in one call.

    Decodes the events (counting each kind in ``counts``), orders the kept ones
    (:func:`_merge`), then turns them into rows: objects at their slot's base address, of
    the slot's size (see :mod:`goheap.trace.exectrace`), GC starts, and the recorded
    series. A tiny allocation inside a live 16-byte block (at an offset in it, or again at
    its start: the trace reports both) is counted, not emitted. The span table ``spans`` and
    the set of live 16-byte tiny blocks ``tiny`` (both rows of :func:`new_table`) persist
    between generations: they are returned, grown if they had to. The ``scratch`` arrays
    (:func:`new_scratch`) are the call's to use; if they are too short (err[0]
    ERR_SCRATCH_FULL, nothing else changed but ``counts``) call again with longer ones.

    The rows go to ``out`` = (kind, addr, size, type_id, noscan, time_ns), arrays of at
    least :func:`rows_bound` entries. Returns ``(n_rows, gc_rows, gc_ends, heap_series,
    goal_series, spans, tiny)``: besides the count of rows, each GC start's row
    and sequence number, each GC end's time and sequence number, and the HeapAlloc and
    HeapGoal metric points as (time, rows before it, bytes). On an error (err[0]) no rows
    are counted and the tables may be half updated.
    """
    n, nseg, max_ts = _decode(buf, bstart, bend, bts, bm, n_m, nargs, timed, keep, counts, scratch, err)
    ts, kind, args, seg_start, seg_key, seg_group, by_run, merged = scratch
    gc_rows = np.empty((n, 2), np.int64)
    gc_ends = np.empty((n, 2), np.int64)
    heap_series = np.empty((n, 3), np.uint64)
    goal_series = np.empty((n, 3), np.uint64)
    nothing = (0, gc_rows[:0], gc_ends[:0], heap_series[:0], goal_series[:0], spans, tiny)
    if err[0] != ERR_NONE:
        return nothing
    if not have_frequency:
        err[0] = ERR_NO_FREQUENCY
        return nothing
    if not have_info:
        for j in range(n):
            if EXPERIMENTAL[0] <= kind[j] < EXPERIMENTAL[1]:
                err[0] = ERR_NO_INFO
                err[1] = _kept_event_at(buf, bstart, bend, nargs, keep, j)
                return nothing
        return nothing  # no heap events (yet): nothing to import
    if out[0].shape[0] < rows_bound(bstart, bend):
        err[0] = ERR_OUT_SHORT
        return nothing
    order = _merge(ts, kind, seg_start, seg_key, seg_group, n, nseg, is_free, by_run, merged)[:n]
    series = (gc_rows, gc_ends, heap_series, goal_series)
    st = np.zeros(_N_ROW_STATE, np.int64)
    st[_LAST_ROW_NS] = counters[C_LAST_ROW_NS]
    span_state = counters[C_SPANS_USED : C_SPANS_GONE + 1]
    tiny_state = counters[C_TINY_USED : C_TINY_GONE + 1]
    while True:
        _rows_into(ts, kind, args, order, spans, tiny, span_state, tiny_state, t0, ns_per_tick, min_addr, align,
                   page_size, class_size, tiny_class, type_ids, type_gids, lenient, st, out, series, counters, err)  # fmt: skip
        if err[0] == _SPANS_FULL:
            spans = _table_rehashed(spans, span_state)
        elif err[0] == _TINY_FULL:
            tiny = _table_rehashed(tiny, tiny_state)
        else:
            break
        err[0] = ERR_NONE
    if err[0] != ERR_NONE:
        err[1] = _kept_event_at(buf, bstart, bend, nargs, keep, err[1])
        return nothing
    counters[C_LAST_ROW_NS] = st[_LAST_ROW_NS]
    if n > 0:
        t = _ns(max_ts, t0, ns_per_tick)
        counters[C_LAST_NS] = t if t > counters[C_LAST_NS] else counters[C_LAST_NS]
    return (st[_ROWS], gc_rows[: st[_GCS]], gc_ends[: st[_GC_ENDS]], heap_series[: st[_HEAP_POINTS]],
            goal_series[: st[_GOAL_POINTS]], spans, tiny)  # fmt: skip


@jit
def rows_bound(bstart, bend):
    """The most rows batches can make: a row's event takes at least 3 bytes."""
    total = 0
    for b in range(bstart.shape[0]):
        total += bend[b] - bstart[b]
    return total // 3 + 1


# _rows_into's state (where to resume) and its stops for a full table
_NEXT, _ROWS, _GCS, _GC_ENDS, _HEAP_POINTS, _GOAL_POINTS, _LAST_ROW_NS, _N_ROW_STATE = range(8)
_SPANS_FULL = -1
_TINY_FULL = -2


@jit
def _rows_into(
    ts, kind, args, order, spans, tiny, span_state, tiny_state, t0, ns_per_tick, min_addr, align, page_size,
    class_size, tiny_class, type_ids, type_gids, lenient, st, out, series, counters, err,
):  # fmt: skip
    """The loop of :func:`generation_rows` that makes rows, resumable: from ``st``; stops
    when a table must be rehashed first (err[0] _SPANS_FULL or _TINY_FULL). An error's
    err[1] is the index of the event (in file order)."""
    row_kind, row_addr, row_size, row_type, row_noscan, row_ns = out
    gc_rows, gc_ends, heap_series, goal_series = series
    n_out = st[_ROWS]
    n_gc = st[_GCS]
    n_end = st[_GC_ENDS]
    n_heap = st[_HEAP_POINTS]
    n_goal = st[_GOAL_POINTS]
    last_row_ns = st[_LAST_ROW_NS]
    max_size = counters[C_MAX_SIZE]
    max_step = counters[C_MAX_TIME_STEP]
    nclass = class_size.shape[0]
    last = -1  # the row of the span that held the last object
    last_tid = np.int64(-1)  # the last type looked up, and its index: objects come in runs of one type
    last_gid = np.int32(-1)
    last_ts = np.uint64(0)  # the last time converted, and in ns: events come in bursts at one time
    last_ns = _ns(last_ts, t0, ns_per_tick)
    i = st[_NEXT]
    n = order.shape[0]
    while i < n:
        if _table_full(spans, span_state) or _table_full(tiny, tiny_state):
            err[0] = _SPANS_FULL if _table_full(spans, span_state) else _TINY_FULL
            break
        j = order[i]
        k = kind[j]
        a0 = args[j, 0]
        if k == EV_SPAN or k == EV_SPAN_ALLOC:
            np_ = args[j, 1]
            kc = args[j, 2]
            if a0 >= np.uint64(MAX_ID):
                _fail(err, ERR_BAD_ID, j, np.int64(a0 & np.uint64(MAX_ID - 1)))
                break
            if np_ == np.uint64(0) or np_ > np.uint64(MAX_SPAN_PAGES):
                _fail(err, ERR_BIG_SPAN, j, np.int64(np_ & np.uint64(MAX_ID - 1)))
                break
            if kc & np.uint64(1):
                counters[C_NONHEAP_SPANS] += 1
            elif (kc >> np.uint64(2)) >= np.uint64(nclass):
                _fail(err, ERR_BAD_CLASS, j, np.int64((kc >> np.uint64(2)) & np.uint64(MAX_ID - 1)))
                break
            span_state[0] += _table_put(spans, np.int64(a0), np.int64(np_), np.int64(kc))
        elif k == EV_SPAN_FREE:
            if a0 < np.uint64(MAX_ID):
                r = _table_find(spans, np.int64(a0))
                if r >= 0:
                    spans[r, _PAGE] = _GONE
                    span_state[0] -= 1
                    span_state[1] += 1
        elif k == EV_HEAP_OBJECT or k == EV_HEAP_OBJECT_ALLOC or k == EV_HEAP_OBJECT_FREE:
            if a0 >= np.uint64(MAX_ID) // np.uint64(align):
                _fail(err, ERR_BAD_ID, j, np.int64(a0 & np.uint64(MAX_ID - 1)))
                break
            off = np.int64(a0) * align
            page = off // page_size
            found = -1
            if (
                last >= 0 and spans[last, _PAGE] >= 0 and spans[last, _PAGE] <= page < spans[last, _PAGE] + spans[last, _NPAGES]
                and (spans[last, _KINDCLASS] & 1) == 0
            ):  # fmt: skip
                found = last  # objects come in runs from one span
            for d in range(MAX_SMALL_SPAN_PAGES if found < 0 else 0):
                if page - d < 0:
                    break
                r = _table_find(spans, page - d)
                if r >= 0 and spans[r, _NPAGES] > d and (spans[r, _KINDCLASS] & 1) == 0:
                    found = r
                    break
            if found < 0 and lenient:
                counters[C_DROPPED] += 1
                i += 1
                continue
            last = found
            if found < 0:
                _fail(err, ERR_NO_SPAN, j, off)
                break
            base = spans[found, _PAGE] * page_size
            spanclass = spans[found, _KINDCLASS] >> 1
            sizeclass = spanclass >> 1
            elem = spans[found, _NPAGES] * page_size if sizeclass == 0 else class_size[sizeclass]
            slot = base + ((off - base) // elem) * elem
            if slot + elem > base + spans[found, _NPAGES] * page_size:
                _fail(err, ERR_TAIL, j, off)
                break
            if k == EV_HEAP_OBJECT_FREE:
                row_kind[n_out] = KIND_FREE
                row_type[n_out] = -1
                counters[C_FREES] += 1
                counters[C_FREE_BYTES] += elem
                if spanclass == tiny_class:
                    r = _table_find(tiny, slot)
                    if r >= 0:
                        tiny[r, _PAGE] = _GONE
                        tiny_state[0] -= 1
                        tiny_state[1] += 1
            else:
                if spanclass == tiny_class:
                    if off != slot or _table_find(tiny, slot) >= 0:
                        counters[C_TINY] += 1  # another tiny object in a live 16-byte block
                        i += 1
                        continue
                    tiny_state[0] += _table_put(tiny, slot, 0, 0)
                row_kind[n_out] = KIND_ALLOC
                tid = np.int64(args[j, 1] & np.uint64(MAX_ID - 1))
                if tid != last_tid:
                    last_tid = tid
                    last_gid = _type_of(type_ids, type_gids, tid)
                row_type[n_out] = last_gid
                counters[C_ALLOCS] += 1
                counters[C_ALLOC_BYTES] += elem
                if k == EV_HEAP_OBJECT:
                    counters[C_SNAPSHOT] += 1
            row_addr[n_out] = np.uint64(slot + min_addr)
            row_size[n_out] = elem
            row_noscan[n_out] = spanclass & 1
            if ts[j] != last_ts:
                last_ts = ts[j]
                last_ns = _ns(last_ts, t0, ns_per_tick)
            t = last_ns
            # the rows' times never go back: a thread's burst of events runs ahead of the
            # clock (see _merge), and the next P's events, though later, can carry earlier times
            if t > last_row_ns:
                if t - last_row_ns > max_step:
                    max_step = t - last_row_ns
                last_row_ns = t
            row_ns[n_out] = last_row_ns
            if elem > max_size:
                max_size = elem
            n_out += 1
        elif k == EV_GC_BEGIN:
            row_kind[n_out] = KIND_GC
            row_addr[n_out] = 0
            row_size[n_out] = 0
            row_type[n_out] = -1
            row_noscan[n_out] = 0
            t = _ns(ts[j], t0, ns_per_tick)
            if t > last_row_ns:
                if t - last_row_ns > max_step:
                    max_step = t - last_row_ns
                last_row_ns = t
            row_ns[n_out] = last_row_ns
            gc_rows[n_gc, 0] = n_out
            gc_rows[n_gc, 1] = np.int64(a0 & np.uint64(MAX_ID - 1))
            counters[C_GCS] += 1
            n_gc += 1
            n_out += 1
        elif k == EV_GC_END:
            gc_ends[n_end, 0] = _ns(ts[j], t0, ns_per_tick)
            gc_ends[n_end, 1] = np.int64(a0 & np.uint64(MAX_ID - 1))
            n_end += 1
        elif k == EV_HEAP_ALLOC:
            _series_point(heap_series, n_heap, _ns(ts[j], t0, ns_per_tick), n_out, a0)
            n_heap += 1
        elif k == EV_HEAP_GOAL:
            _series_point(goal_series, n_goal, _ns(ts[j], t0, ns_per_tick), n_out, a0)
            n_goal += 1
        i += 1
    st[_NEXT] = i
    st[_ROWS] = n_out
    st[_GCS] = n_gc
    st[_GC_ENDS] = n_end
    st[_HEAP_POINTS] = n_heap
    st[_GOAL_POINTS] = n_goal
    st[_LAST_ROW_NS] = last_row_ns
    counters[C_MAX_SIZE] = max_size
    counters[C_MAX_TIME_STEP] = max_step


@jit
def _series_point(series, i, time_ns, rows_before, nbytes):
    series[i, 0] = time_ns
    series[i, 1] = rows_before
    series[i, 2] = nbytes


@jit
def _fail(err, code, where, value):
    err[0] = code
    err[1] = where
    err[2] = value
