"""The compiled inner loops of the execution-trace reader: varints, and spans to slots.

See :mod:`goheap.trace.exectrace` for the format and the reader around these. Both loops
run over numpy arrays only and report problems through an ``err`` array (a code and where),
never by raising, so the Python side can name the byte offset; every length they read is
checked against the buffer's end, so no input can make them read or write out of bounds.
Every index they write is below the capacity the caller gave, and they stop (to be called
again with room) rather than grow.

Interpreted (``NUMBA_DISABLE_JIT=1``) they give the same results, slowly.
"""

from __future__ import annotations

import numpy as np

from goheap._runtime._jit import jit
from goheap.trace.exectrace.format import (
    EV_GC_BEGIN,
    EV_GC_END,
    EV_HEAP_ALLOC,
    EV_HEAP_GOAL,
    EV_HEAP_OBJECT,
    EV_HEAP_OBJECT_ALLOC,
    EV_HEAP_OBJECT_FREE,
    EV_SPAN,
    EV_SPAN_ALLOC,
    EV_SPAN_FREE,
)
from goheap.trace.tracefile import KIND_ALLOC, KIND_FREE, KIND_GC

__all__ = ["decode_events", "merge_runs", "proc_runs", "slots_of_events", "span_table_rehash"]

# decode_events' error codes (err[0]); err[1] is the offset in the buffer, err[2] a value
ERR_NONE = 0
ERR_KIND = 1  # a kind byte this version has no event for, or not allowed in an event batch
ERR_VARINT = 2  # a varint longer than 10 bytes or past 2**64 - 1
ERR_SHORT = 3  # an event that runs past the end of its batch
ERR_FULL = 4  # not an error: the output is full; call again from st

_U7F = np.uint64(0x7F)


@jit
def decode_events(buf, bstart, bend, bts, nargs, timed, keep, st, counts, out_ts, out_kind, out_args, out_pos, out_batch, err):
    """Decode the events of batches st[0].. of ``buf`` into the out arrays.

    Batch ``b`` is ``buf[bstart[b]:bend[b]]`` with base timestamp ``bts[b]``. For each
    event: its kind is counted (``counts[kind]``), and if ``keep[kind]`` its time (the
    batch's timestamp plus the deltas so far), kind, first three arguments after the
    time delta and offset in ``buf`` are stored at row ``st[2]``. ``st`` = (batch, offset
    in buf, rows written, timestamp) is where to resume: on ERR_FULL, call again with
    bigger out arrays (the rows so far copied over). Returns nothing; err says how it ended.
    """
    args = np.zeros(6, np.uint64)
    cap = out_ts.shape[0]
    n = st[2]
    b = st[0]
    nb = bstart.shape[0]
    while b < nb:
        end = bend[b]
        if st[1] >= bstart[b] and st[1] < end:
            pos = st[1]
            ts = np.uint64(st[3])
        else:
            pos = bstart[b]
            ts = np.uint64(bts[b])
        while pos < end:
            kind = buf[pos]
            na = nargs[kind]
            if na <= 0 or timed[kind] == 0:
                err[0] = ERR_KIND
                err[1] = pos
                err[2] = kind
                return
            if keep[kind] != 0 and n >= cap:
                st[0] = b
                st[1] = pos
                st[2] = n
                st[3] = np.int64(ts)
                err[0] = ERR_FULL
                return
            p = pos + 1
            for i in range(na):
                v = np.uint64(0)
                shift = 0
                while True:
                    if p >= end:
                        err[0] = ERR_SHORT
                        err[1] = pos
                        err[2] = kind
                        return
                    c = buf[p]
                    p += 1
                    if shift == 63 and c > 1:
                        err[0] = ERR_VARINT
                        err[1] = pos
                        err[2] = kind
                        return
                    v |= (np.uint64(c) & _U7F) << np.uint64(shift)
                    if c < 0x80:
                        break
                    shift += 7
                    if shift > 63:
                        err[0] = ERR_VARINT
                        err[1] = pos
                        err[2] = kind
                        return
                args[i] = v
            ts += args[0]
            counts[kind] += 1
            if keep[kind] != 0:
                out_ts[n] = ts
                out_kind[n] = kind
                out_args[n, 0] = args[1]
                out_args[n, 1] = args[2]
                out_args[n, 2] = args[3]
                out_pos[n] = pos
                out_batch[n] = b
                n += 1
            pos = p
        b += 1
    st[0] = nb
    st[2] = n
    err[0] = ERR_NONE


# ---------------------------------------------------------------- the span table

# slots_of_events' error codes
ERR_NO_SPAN = 11  # an object in no span the trace described
ERR_BIG_SPAN = 12  # a span of more pages than any heap holds
ERR_BAD_CLASS = 13  # a size class the version's table does not have
ERR_BAD_ID = 14  # an object or span id past any address
ERR_TAIL = 15  # an object in the tail a span leaves after its last slot

#: The most pages a span may have (a 128 GB object); more is a corrupt trace.
MAX_SPAN_PAGES = 1 << 24
#: The largest span or object id accepted: ids are offsets from the heap's lowest address.
MAX_ID = 1 << 52
#: A small-object span has at most this many pages (Go's MaxSizeClassNPages).
MAX_SMALL_SPAN_PAGES = 10
_EMPTY = -1
_GONE = -2


@jit
def _span_slot(keys, page):
    """The row of span ``page`` in the table, or -1 (linear probing; keys -1 end a chain)."""
    mask = keys.shape[0] - 1
    i = (page * 0x9E3779B1) & mask
    while True:
        k = keys[i]
        if k == page:
            return i
        if k == _EMPTY:
            return -1
        i = (i + 1) & mask


@jit
def _span_insert(keys, npages, kindclass, page, np_, kc):
    """Put span ``page`` in the table (replacing one at that page). Returns 1 if a row was taken."""
    mask = keys.shape[0] - 1
    i = (page * 0x9E3779B1) & mask
    free = -1
    while True:
        k = keys[i]
        if k == page:
            npages[i] = np_
            kindclass[i] = kc
            return 0
        if k == _GONE and free < 0:
            free = i
        if k == _EMPTY:
            if free < 0:
                free = i
            keys[free] = page
            npages[free] = np_
            kindclass[free] = kc
            return 1
        i = (i + 1) & mask


@jit
def span_table_rehash(keys, npages, kindclass, capacity):
    """The live spans in a fresh table of ``capacity`` rows (a power of two)."""
    k2 = np.full(capacity, _EMPTY, np.int64)
    n2 = np.zeros(capacity, np.int64)
    c2 = np.zeros(capacity, np.int64)
    for i in range(keys.shape[0]):
        if keys[i] >= 0:
            _span_insert(k2, n2, c2, keys[i], npages[i], kindclass[i])
    return k2, n2, c2


@jit
def slots_of_events(
    ev_kind, ev_args, order, keys, npages, kindclass, tstate, tiny_keys, tiny_a, tiny_b, tiny_state, align,
    page_size, class_size, tiny_class, lenient, out_kind, out_addr, out_size, out_type, out_noscan, out_src, gc_seq, heap_rows, goal_rows,
    gc_end_rows, counters, err,
):  # fmt: skip
    """Turn decoded events (in the order ``order``) into goheap rows; see :mod:`..allocfree`.

    The span table (keys, npages, kindclass; ``tstate`` = rows used, rows gone) persists
    between calls, and so does the set of live 16-byte blocks of the tiny allocator
    (tiny_keys; tiny_a and tiny_b are unused rows of the same table code); the caller
    rehashes a table when its state says it is half full (a call stops with err[0] = -1
    (spans) or -2 (tiny blocks) when it needs that, at ``counters[0]``). Objects become
    rows at their slot's base address (an offset from the heap's lowest address: the
    caller adds that), of the slot's size; a tiny allocation inside a live 16-byte block
    (at an offset in it, or again at its start: the trace reports both) is counted
    (counters[1]), not emitted.

    counters: 0 next event, 1 tiny allocations, 2 rows, 3 heap rows, 4 goal rows,
    5 GC-end rows, 6 snapshot objects, 7 span events of non-heap spans, 8 objects dropped
    because no span holds them (only when ``lenient``: the last generation of a trace cut
    short misses the batches of some threads, so some spans are never seen).
    """
    n_out = counters[2]
    n_heap = counters[3]
    n_goal = counters[4]
    n_end = counters[5]
    nclass = class_size.shape[0]
    last = -1  # the row of the span that held the last object
    i = counters[0]
    nev = order.shape[0]
    while i < nev:
        if 2 * (tstate[0] + tstate[1] + 1) > keys.shape[0]:
            err[0] = -1
            break
        if 2 * (tiny_state[0] + tiny_state[1] + 1) > tiny_keys.shape[0]:
            err[0] = -2
            break
        j = order[i]
        kind = ev_kind[j]
        a0 = ev_args[j, 0]
        if kind == EV_SPAN or kind == EV_SPAN_ALLOC:
            np_ = ev_args[j, 1]
            kc = ev_args[j, 2]
            if a0 >= np.uint64(MAX_ID):
                err[0] = ERR_BAD_ID
                err[1] = j
                err[2] = np.int64(a0 & np.uint64(MAX_ID - 1))
                break
            if np_ == np.uint64(0) or np_ > np.uint64(MAX_SPAN_PAGES):
                err[0] = ERR_BIG_SPAN
                err[1] = j
                err[2] = np.int64(np_ & np.uint64(MAX_ID - 1))
                break
            if kc & np.uint64(1):
                counters[7] += 1
            elif (kc >> np.uint64(2)) >= np.uint64(nclass):
                err[0] = ERR_BAD_CLASS
                err[1] = j
                err[2] = np.int64((kc >> np.uint64(2)) & np.uint64(MAX_ID - 1))
                break
            tstate[0] += _span_insert(keys, npages, kindclass, np.int64(a0), np.int64(np_), np.int64(kc))
        elif kind == EV_SPAN_FREE:
            if a0 < np.uint64(MAX_ID):
                r = _span_slot(keys, np.int64(a0))
                if r >= 0:
                    keys[r] = _GONE
                    tstate[0] -= 1
                    tstate[1] += 1
        elif kind == EV_HEAP_OBJECT or kind == EV_HEAP_OBJECT_ALLOC or kind == EV_HEAP_OBJECT_FREE:
            if a0 >= np.uint64(MAX_ID) // np.uint64(align):
                err[0] = ERR_BAD_ID
                err[1] = j
                err[2] = np.int64(a0 & np.uint64(MAX_ID - 1))
                break
            off = np.int64(a0) * align
            page = off // page_size
            found = -1
            if last >= 0 and keys[last] >= 0 and keys[last] <= page < keys[last] + npages[last] and (kindclass[last] & 1) == 0:
                found = last  # objects come in runs from one span
            for k in range(MAX_SMALL_SPAN_PAGES if found < 0 else 0):
                if page - k < 0:
                    break
                r = _span_slot(keys, page - k)
                if r >= 0 and npages[r] > k and (kindclass[r] & 1) == 0:
                    found = r
                    break
            if found < 0 and lenient:
                counters[8] += 1
                i += 1
                continue
            last = found
            if found < 0:
                err[0] = ERR_NO_SPAN
                err[1] = j
                err[2] = off
                break
            base = keys[found] * page_size
            spanclass = kindclass[found] >> 1
            sizeclass = spanclass >> 1
            if sizeclass == 0:
                elem = npages[found] * page_size
            else:
                elem = class_size[sizeclass]
            slot = base + ((off - base) // elem) * elem
            if slot + elem > base + npages[found] * page_size:
                err[0] = ERR_TAIL
                err[1] = j
                err[2] = off
                break
            if kind == EV_HEAP_OBJECT_FREE:
                out_kind[n_out] = KIND_FREE
                if spanclass == tiny_class:
                    r = _span_slot(tiny_keys, slot)
                    if r >= 0:
                        tiny_keys[r] = _GONE
                        tiny_state[0] -= 1
                        tiny_state[1] += 1
            else:
                if spanclass == tiny_class:
                    if off != slot or _span_slot(tiny_keys, slot) >= 0:
                        counters[1] += 1  # another tiny object in a live 16-byte block
                        i += 1
                        continue
                    tiny_state[0] += _span_insert(tiny_keys, tiny_a, tiny_b, slot, 0, 0)
                out_kind[n_out] = KIND_ALLOC
                if kind == EV_HEAP_OBJECT:
                    counters[6] += 1
            out_addr[n_out] = slot
            out_size[n_out] = elem
            out_type[n_out] = np.int64(ev_args[j, 1] & np.uint64(MAX_ID - 1)) if kind != EV_HEAP_OBJECT_FREE else 0
            out_noscan[n_out] = spanclass & 1
            out_src[n_out] = j
            n_out += 1
        elif kind == EV_GC_BEGIN:
            out_kind[n_out] = KIND_GC
            out_addr[n_out] = 0
            out_size[n_out] = 0
            out_type[n_out] = 0
            out_noscan[n_out] = 0
            out_src[n_out] = j
            gc_seq[n_out] = np.int64(a0 & np.uint64(MAX_ID - 1))
            n_out += 1
        elif kind == EV_GC_END:
            gc_end_rows[n_end, 0] = j
            gc_end_rows[n_end, 1] = np.int64(a0 & np.uint64(MAX_ID - 1))
            n_end += 1
        elif kind == EV_HEAP_ALLOC:
            heap_rows[n_heap, 0] = j
            heap_rows[n_heap, 1] = n_out
            n_heap += 1
        elif kind == EV_HEAP_GOAL:
            goal_rows[n_goal, 0] = j
            goal_rows[n_goal, 1] = n_out
            n_goal += 1
        i += 1
    counters[0] = i
    counters[2] = n_out
    counters[3] = n_heap
    counters[4] = n_goal
    counters[5] = n_end


# ---------------------------------------------------------------- one order for all threads

_PROC_RUNNING = 1
_PROC_SYSCALL = 3
_SEQ_BITS = 40
_MAX_P = 1 << 16  # P ids are below GOMAXPROCS; larger ones (a corrupt trace) wrap


@jit
def _dense(values, n):
    """Each value's index among the distinct values, in order of first appearance."""
    keys = np.full(1 << 4, -1, np.int64)
    ids = np.zeros(1 << 4, np.int64)
    used = np.zeros(1, np.int64)
    out = np.empty(n, np.int64)
    for j in range(n):
        v = values[j]
        if 2 * (used[0] + 1) > keys.shape[0]:
            k2 = np.full(2 * keys.shape[0], -1, np.int64)
            i2 = np.zeros(2 * keys.shape[0], np.int64)
            for r in range(keys.shape[0]):
                if keys[r] >= 0:
                    s = (keys[r] * 0x9E3779B1) & (k2.shape[0] - 1)
                    while k2[s] >= 0:
                        s = (s + 1) & (k2.shape[0] - 1)
                    k2[s] = keys[r]
                    i2[s] = ids[r]
            keys = k2
            ids = i2
        mask = keys.shape[0] - 1
        s = (v * 0x9E3779B1) & mask
        while keys[s] >= 0 and keys[s] != v:
            s = (s + 1) & mask
        if keys[s] < 0:
            keys[s] = v
            ids[s] = used[0]
            used[0] += 1
        out[j] = ids[s]
    return out


@jit
def proc_runs(kind, args, batch, batch_m, proc_status, proc_start, proc_stop, syscall_end_blocked):
    """The key that orders each event among the others on its P: (P, the P's sequence
    number of the tenure the event's thread held it in); see ExecTraceReader._merge.

    Events are in file order, which is each thread's own order. A thread holds a P from
    a ProcStatus (running or in a syscall) or ProcStart to a ProcStop or a blocked
    syscall end. Events of a thread without a P get a run of that thread's own.
    """
    n = kind.shape[0]
    mi = _dense(batch_m, batch_m.shape[0])
    nm = 0
    for b in range(mi.shape[0]):
        if mi[b] + 1 > nm:
            nm = mi[b] + 1
    curp = np.full(nm, -1, np.int64)
    curseq = np.zeros(nm, np.int64)
    group = np.empty(n, np.int64)
    seq = np.empty(n, np.int64)
    for j in range(n):
        m = mi[batch[j]]
        k = kind[j]
        if k == proc_status:
            if args[j, 1] == _PROC_RUNNING or args[j, 1] == _PROC_SYSCALL:
                curp[m] = np.int64(args[j, 0] & np.uint64(_MAX_P - 1))
                curseq[m] = 0
        elif k == proc_start:
            curp[m] = np.int64(args[j, 0] & np.uint64(_MAX_P - 1))
            curseq[m] = np.int64(args[j, 1] & np.uint64((1 << _SEQ_BITS) - 1))
        elif k == proc_stop or k == syscall_end_blocked:
            curp[m] = -1
        if curp[m] >= 0:
            group[j] = curp[m]  # Ps first, then one group per thread without a P
            seq[j] = curseq[m]
        else:
            group[j] = _MAX_P + m
            seq[j] = 0
    return (group << _SEQ_BITS) | seq, group


@jit
def merge_runs(ts, kind, by_run, group, is_free):
    """Merge the groups (each contiguous in ``by_run``, in its own order) by the time of
    each group's next event; at one time, frees first, then the lower group."""
    n = by_run.shape[0]
    starts = np.zeros(n + 1, np.int64)
    ngroups = 0
    for i in range(n):
        if i == 0 or group[by_run[i]] != group[by_run[i - 1]]:
            starts[ngroups] = i
            ngroups += 1
    starts[ngroups] = n
    if ngroups <= 1:
        return by_run.copy()
    head = starts[:ngroups].copy()
    heap = np.arange(ngroups)
    out = np.empty(n, np.int64)
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
