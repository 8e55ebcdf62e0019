"""The compiled scanner of allocfreetrace logs: bytes in, events out.

See :mod:`goheap.trace.allocfreetrace` for the log format, the rules of the grammar and
what is kept; this is the loop that applies them, byte by byte, over the log's bytes in a
numpy buffer (:class:`~goheap.trace.byteinput.ByteInput`). :func:`scan_log` reads lines
as Python's text mode would (a line ends at ``\\n``, ``\\r\\n`` or ``\\r``) and writes, for
each complete event, its kind, address, size and two *keys*: the bytes that name its type
and the bytes of its stack that matter (each function and ``file:line +0xPC``, without the
arguments and frame pointers that differ between calls from one place), each entered once
in a table of distinct keys. The Python side turns each new key into strings, once: a log
of millions of events has a few thousand distinct stacks.

A key is a tag byte (:data:`KEY_STACK` or :data:`KEY_TYPE`) then, for a type, its name's
bytes; for a stack, its *segments*' ids (int32, little-endian). A segment is one string of
a stack, entered once in a second table of the same kind: a kind byte (:data:`SEG_FUNC` a
function, :data:`SEG_FILE` a file line cut at `` fp=``, :data:`SEG_FILE_LINE` a whole file
line, :data:`SEG_NONE` a function without its file line) and its bytes. Entries equal as
bytes are one; two entries whose strings come out equal (bytes that decode alike) are made
one by the Python side.

The scan stops, with ``st`` saying where to resume, when it needs more bytes (an event
must be whole in the buffer; a collection's goroutine dump is streamed line by line), when
the output arrays are full, when the key table needs room, at the end of the input, or at
an error. It writes nothing of an event it has not finished, so resuming after a stop
starts that event again. Interpreted (``NUMBA_DISABLE_JIT=1``) it gives the same results.
"""

from __future__ import annotations

import numpy as np

from goheap._runtime._jit import jit
from goheap.trace.tracefile import KIND_ALLOC, KIND_FREE, KIND_GC

__all__ = ["N_STATE", "grown_keys", "new_keys", "scan_log"]

# st: the scanner's state (int64), kept between calls
ST_POS = 0  # offset of the next line to read: the start of an event not yet finished
ST_LINENO = 1  # lines before it
ST_GC_LINE = 2  # inside a tracegc event's goroutine dump: the line of its tracegc (else 0)
ST_EVENTS = 3  # events written to the output arrays
ST_KEYS = 4  # keys in the key table, and bytes of its pool in use
ST_POOL = 5
ST_SEGS = 6  # the same for the segment table
ST_SEG_POOL = 7
ST_STOP = 8  # why the scan stopped (STOP_*)
ST_WHAT = 9  # at an error, which (ERR_*); at the end, how the last event was cut (CUT_*)
ST_LINE = 10  # ... the line of the error or cut
ST_START = 11  # ... the line of the event it is in
ST_A = 12  # ... where the line (or, for ERR_*_BITS, the hex number) begins and ends
ST_B = 13
N_STATE = 14

STOP_MORE = 0  # give it more bytes (or say they are all there)
STOP_FULL = 1  # the output arrays hold as many events as asked
STOP_KEYS = 2  # the key table (ST_WHAT: FULL_KEYS) or the segment table (FULL_SEGS) needs room
STOP_END = 3  # every byte read (ST_WHAT: how the last event was cut, CUT_NONE if it was not)
STOP_ERROR = 4  # a malformed log (ST_WHAT)

ERR_MALFORMED = 1  # an event line that does not follow the grammar
ERR_NESTED_GC = 2  # an event line inside a tracegc's goroutine dump
ERR_NESTED_STACK = 3  # an event line inside an event's stack
ERR_NO_HEADER = 4  # an event line not followed by a goroutine header
ERR_ADDR_BITS = 5  # an address of more than 64 bits
ERR_SIZE_BITS = 6  # a size of more than 64 bits

FULL_KEYS = 1
FULL_SEGS = 2

CUT_NONE = 0
CUT_GC_LINE = 1  # in the middle of a tracegc line
CUT_GC = 2  # in the tracegc event
CUT_EVENT_LINE = 3  # in the middle of an event line
CUT_BEFORE_STACK = 4  # after an event line, before its stack
CUT_HEADER = 5  # in the goroutine header
CUT_STACK = 6  # in the event's stack

KEY_STACK = 0x53  # "S"
KEY_TYPE = 0x54  # "T"
SEG_FUNC = 0
SEG_FILE = 1
SEG_FILE_LINE = 2
SEG_NONE = 3

_NL = 10
_CR = 13
_TAB = 9
_SPACE = 32
_TRACEALLOC = np.frombuffer(b"tracealloc(", np.uint8)
_TRACEFREE = np.frombuffer(b"tracefree(", np.uint8)
_TRACEGC = np.frombuffer(b"tracegc(", np.uint8)
_GOROUTINE = np.frombuffer(b"goroutine ", np.uint8)
_CREATED_BY = np.frombuffer(b"created by ", np.uint8)
_END_TRACEGC = np.frombuffer(b"end tracegc", np.uint8)
_FP = np.frombuffer(b" fp=", np.uint8)
_EMPTY = -1


def new_keys(slots: int = 1 << 12, pool_bytes: int = 1 << 20) -> tuple:
    """An empty key table: (pool of key bytes, each key's offset, its length, hash slots)."""
    return (
        np.empty(pool_bytes, np.uint8),
        np.empty(slots // 2, np.int64),
        np.empty(slots // 2, np.int64),
        np.full(slots, _EMPTY, np.int64),
    )


@jit
def _line(buf, pos, end, at_eof):
    """The line at ``buf[pos]``: (status, end of its text, start of the next line, whether
    it ends in a line break). status 0: a line; 1: more bytes needed; 2: no line (the end)."""
    if pos >= end:
        return (2 if at_eof else 1), pos, pos, False
    i = pos
    while i < end:
        c = buf[i]
        if c == _NL:
            return 0, i, i + 1, True
        if c == _CR:
            if i + 1 < end:
                return 0, i, i + (2 if buf[i + 1] == _NL else 1), True
            if at_eof:
                return 0, i, i + 1, True
            return 1, pos, pos, False
        i += 1
    if at_eof:
        return 0, end, end, False
    return 1, pos, pos, False


@jit
def _starts(buf, a, b, lit):
    """Whether ``buf[a:b]`` starts with ``lit``."""
    n = lit.shape[0]
    if b - a < n:
        return False
    for k in range(n):
        if buf[a + k] != lit[k]:
            return False
    return True


@jit
def _prefix_of(buf, a, b, lit):
    """Whether ``buf[a:b]`` is a prefix of ``lit``."""
    if b - a > lit.shape[0]:
        return False
    for k in range(b - a):
        if buf[a + k] != lit[k]:
            return False
    return True


@jit
def _find(buf, a, b, lit):
    """The first index of ``lit`` in ``buf[a:b]``, or -1."""
    n = lit.shape[0]
    for i in range(a, b - n + 1):
        if buf[i] == lit[0]:
            k = 1
            while k < n and buf[i + k] == lit[k]:
                k += 1
            if k == n:
                return i
    return -1


@jit
def _hex(buf, p, b):
    """``0x`` or ``0X`` then hex digits at ``buf[p]``: (value, index after, ok, wider than 64 bits)."""
    if p + 2 >= b or buf[p] != 48 or (buf[p + 1] != 120 and buf[p + 1] != 88):
        return np.uint64(0), p, False, False
    q = p + 2
    v = np.uint64(0)
    digits = 0
    while q < b:
        c = buf[q]
        if 48 <= c <= 57:
            d = c - 48
        elif 97 <= c <= 102:
            d = c - 87
        elif 65 <= c <= 70:
            d = c - 55
        else:
            break
        if digits > 0 or d != 0:
            digits += 1  # significant digits: leading zeros do not count
        v = (v << np.uint64(4)) | np.uint64(d)
        q += 1
    return v, q, q > p + 2, digits > 16


@jit
def _event_line(buf, a, b, plen):
    """Parse ``tracealloc(0xADDR, 0xSIZE[, TYPE])`` (or tracefree's, ``plen`` the length of
    its prefix) in ``buf[a:b]`` (a line's text): (ok, addr, size, addr's end, size's end,
    type start, type end (= start: none), addr too wide, size too wide)."""
    addr, p, ok, wide_addr = _hex(buf, a + plen, b)
    p1 = p
    if not ok or p + 2 > b or buf[p] != 44 or buf[p + 1] != _SPACE:
        return False, addr, np.uint64(0), p1, p1, p1, p1, False, False
    size, p, ok, wide_size = _hex(buf, p + 2, b)
    p2 = p
    if not ok or p >= b:
        return False, addr, size, p1, p2, p2, p2, False, False
    t0 = p
    t1 = p
    if buf[p] == 44:  # ", TYPE)": up to the last ")" that only blanks follow
        if p + 1 >= b or buf[p + 1] != _SPACE:
            return False, addr, size, p1, p2, p2, p2, False, False
        t0 = p + 2
        r = b - 1
        while r >= t0 and (buf[r] == _SPACE or buf[r] == _TAB):
            r -= 1
        if r <= t0 or buf[r] != 41:
            return False, addr, size, p1, p2, p2, p2, False, False
        t1 = r
    elif buf[p] == 41:
        r = p + 1
        while r < b and (buf[r] == _SPACE or buf[r] == _TAB):
            r += 1
        if r != b:
            return False, addr, size, p1, p2, p2, p2, False, False
    else:
        return False, addr, size, p1, p2, p2, p2, False, False
    return True, addr, size, p1, p2, t0, t1, wide_addr, wide_size


@jit
def _gc_line(buf, a, b):
    """Whether ``buf[a:b]`` is ``tracegc()`` and blanks."""
    if not _starts(buf, a, b, _TRACEGC) or a + 8 >= b or buf[a + 8] != 41:
        return False
    for i in range(a + 9, b):
        if buf[i] != _SPACE and buf[i] != _TAB:
            return False
    return True


@jit
def _is_event_line(buf, a, b):
    return b > a and buf[a] == 116 and (_starts(buf, a, b, _TRACEALLOC) or _starts(buf, a, b, _TRACEFREE) or _starts(buf, a, b, _TRACEGC))


@jit
def _segment(segs, counts, kind, buf, a, b, pool, at):
    """Enter the segment ``kind`` + ``buf[a:b]`` in the segment table and append its id to
    the key being written at ``pool[at]``; returns the index after it, or -FULL_SEGS or
    -FULL_KEYS if that table needs room."""
    seg_pool = segs[0]
    start = counts[1]
    n = b - a
    if at + 4 > pool.shape[0]:
        return -FULL_KEYS
    if start + 1 + n > seg_pool.shape[0]:
        return -FULL_SEGS
    seg_pool[start] = kind
    for k in range(n):
        seg_pool[start + 1 + k] = buf[a + k]
    sid = _key_id(segs, counts, start, 1 + n)
    if sid < 0:
        return -FULL_SEGS
    pool[at] = sid & 0xFF
    pool[at + 1] = (sid >> 8) & 0xFF
    pool[at + 2] = (sid >> 16) & 0xFF
    pool[at + 3] = (sid >> 24) & 0xFF
    return at + 4


def grown_keys(keys: tuple, n_keys: int, pool_used: int, extra_bytes: int) -> tuple:
    """The key (or segment) table ``keys`` (``n_keys`` entries, ``pool_used`` bytes) in
    one twice as large, with room for ``extra_bytes`` more bytes besides."""
    pool, key_off, key_len, slots = keys
    grown = new_keys(2 * len(slots), max(2 * len(pool), pool_used + extra_bytes + 64))
    grown[0][:pool_used] = pool[:pool_used]
    grown[1][:n_keys] = key_off[:n_keys]
    grown[2][:n_keys] = key_len[:n_keys]
    _rehash(grown, n_keys)
    return grown


@jit
def _hash(pool, start, length):
    """32-bit FNV-1a of ``pool[start:start + length]`` (in int64: nothing overflows,
    compiled or not)."""
    h = np.int64(2166136261)
    for k in range(start, start + length):
        h = ((h ^ np.int64(pool[k])) * 16777619) & 0xFFFFFFFF
    return h


@jit
def _rehash(keys, n_keys):
    """Enter keys 0..n_keys-1 (already in the pool) in the table's empty slots."""
    pool, key_off, key_len, slots = keys
    mask = slots.shape[0] - 1
    for k in range(n_keys):
        i = _hash(pool, key_off[k], key_len[k]) & mask
        while slots[i] != _EMPTY:
            i = (i + 1) & mask
        slots[i] = k


@jit
def _key_id(keys, counts, start, length):
    """The id of the key ``pool[start:start + length]``, entered if new; -1 if the table
    needs room first. A new key's bytes are where the caller wrote them, at the pool's
    end; ``counts`` = (keys in the table, bytes of the pool in use) is updated."""
    pool, key_off, key_len, slots = keys
    mask = slots.shape[0] - 1
    i = _hash(pool, start, length) & mask
    while True:
        e = slots[i]
        if e == _EMPTY:
            break
        if key_len[e] == length:
            o = key_off[e]
            same = True
            for k in range(length):
                if pool[o + k] != pool[start + k]:
                    same = False
                    break
            if same:
                return e
        i = (i + 1) & mask
    n = counts[0]
    if n >= key_off.shape[0] or 2 * (n + 1) > slots.shape[0]:
        return -1
    slots[i] = n
    key_off[n] = start
    key_len[n] = length
    counts[0] = n + 1
    counts[1] = start + length
    return n


@jit
def _stop(st, stop, what, line, start, a, b):
    st[ST_STOP] = stop
    st[ST_WHAT] = what
    st[ST_LINE] = line
    st[ST_START] = start
    st[ST_A] = a
    st[ST_B] = b


@jit
def scan_log(buf, end, base, at_eof, st, out_kind, out_addr, out_size, out_type, out_stack, stop_at, keys, segs):
    """Scan the log's bytes ``buf[:end]`` (``buf[i]`` is byte ``base + i``) from offset
    ``st[ST_POS]`` (see the module docstring); ``at_eof``: no byte comes after them.

    Writes events from ``st[ST_EVENTS]`` on into the out arrays (kind, address, size, the
    type's key or -1, the stack's key or -1) until there are ``stop_at``; ``keys`` and
    ``segs`` are tables of :func:`new_keys`. Returns with ``st[ST_STOP]`` saying why.
    """
    pool = keys[0]
    key_counts = st[ST_KEYS : ST_POOL + 1]
    seg_counts = st[ST_SEGS : ST_SEG_POOL + 1]
    pos = st[ST_POS] - base
    lineno = st[ST_LINENO]
    n = st[ST_EVENTS]
    while True:
        st[ST_POS] = base + pos
        st[ST_LINENO] = lineno
        st[ST_EVENTS] = n
        if n >= stop_at:
            _stop(st, STOP_FULL, 0, 0, 0, 0, 0)
            break
        if st[ST_GC_LINE] > 0:  # the rest of a collection's goroutine dump, line by line
            status, b, nxt, newline = _line(buf, pos, end, at_eof)
            if status == 1:
                _stop(st, STOP_MORE, 0, 0, 0, 0, 0)
                break
            if status == 2:
                _stop(st, STOP_END, CUT_GC, lineno, st[ST_GC_LINE], 0, 0)
                break
            lineno += 1
            if b > pos and buf[pos] == 101 and _starts(buf, pos, b, _END_TRACEGC):
                out_kind[n] = KIND_GC
                out_addr[n] = 0
                out_size[n] = 0
                out_type[n] = -1
                out_stack[n] = -1
                n += 1
                st[ST_GC_LINE] = 0
            elif _is_event_line(buf, pos, b):
                _stop(st, STOP_ERROR, ERR_NESTED_GC, lineno, st[ST_GC_LINE], base + pos, base + b)
                break
            pos = nxt
            continue
        # outside an event: skip the program's output up to an event line
        status, b, nxt, newline = _line(buf, pos, end, at_eof)
        if status == 1:
            _stop(st, STOP_MORE, 0, 0, 0, 0, 0)
            break
        if status == 2:
            _stop(st, STOP_END, CUT_NONE, lineno, 0, 0, 0)
            break
        lineno += 1
        if not _is_event_line(buf, pos, b):
            pos = nxt
            continue
        start = lineno
        if _starts(buf, pos, b, _TRACEGC):
            if not _gc_line(buf, pos, b):
                if not newline:
                    _stop(st, STOP_END, CUT_GC_LINE, lineno, start, 0, 0)
                else:
                    _stop(st, STOP_ERROR, ERR_MALFORMED, lineno, start, base + pos, base + b)
                break
            st[ST_GC_LINE] = start
            pos = nxt
            continue
        kind = KIND_ALLOC if buf[pos + 5] == 97 else KIND_FREE
        plen = 11 if kind == KIND_ALLOC else 10
        ok, addr, size, addr_end, size_end, t0, t1, wide_addr, wide_size = _event_line(buf, pos, b, plen)
        if not ok:
            if not newline:
                _stop(st, STOP_END, CUT_EVENT_LINE, lineno, start, 0, 0)
            else:
                _stop(st, STOP_ERROR, ERR_MALFORMED, lineno, start, base + pos, base + b)
            break
        if wide_addr:
            _stop(st, STOP_ERROR, ERR_ADDR_BITS, lineno, start, base + pos + plen, base + addr_end)
            break
        if wide_size:
            _stop(st, STOP_ERROR, ERR_SIZE_BITS, lineno, start, base + addr_end + 2, base + size_end)
            break
        # the goroutine header
        pos = nxt
        status, b, nxt, newline = _line(buf, pos, end, at_eof)
        if status == 1:
            _stop(st, STOP_MORE, 0, 0, 0, 0, 0)
            break
        if status == 2:
            _stop(st, STOP_END, CUT_BEFORE_STACK, lineno, start, 0, 0)
            break
        lineno += 1
        if not _starts(buf, pos, b, _GOROUTINE):
            if not newline and _prefix_of(buf, pos, b, _GOROUTINE):
                _stop(st, STOP_END, CUT_HEADER, lineno, start, 0, 0)
            else:
                _stop(st, STOP_ERROR, ERR_NO_HEADER, lineno, start, base + pos, base + b)
            break
        # the stack: its functions and their file lines, as segments of the key
        key0 = st[ST_POOL]
        at = key0 + 1
        if at > pool.shape[0]:
            _stop(st, STOP_KEYS, FULL_KEYS, 0, 0, 0, 0)
            break
        pool[key0] = KEY_STACK
        nseg = 0
        skip_file = False  # the file line of a "created by" frame
        stop = -1
        while True:
            pos = nxt
            status, b, nxt, newline = _line(buf, pos, end, at_eof)
            if status == 1:
                stop = STOP_MORE
                break
            if status == 2:
                stop = STOP_END
                break
            lineno += 1
            if b == pos:  # a blank line ends the stack
                break
            c = buf[pos]
            if c == _TAB:
                if skip_file:
                    skip_file = False
                elif nseg % 2 == 1:
                    f = _find(buf, pos, b, _FP)
                    if f >= 0:
                        at = _segment(segs, seg_counts, SEG_FILE, buf, pos + 1, f, pool, at)
                    else:
                        at = _segment(segs, seg_counts, SEG_FILE_LINE, buf, pos + 1, b, pool, at)
                    nseg += 1
                    if at < 0:
                        stop = STOP_KEYS
                        break
                continue
            if c == 99 and _starts(buf, pos, b, _CREATED_BY):
                skip_file = True
                continue
            if c == 116 and _is_event_line(buf, pos, b):
                stop = STOP_ERROR
                break
            p = b - 1
            while p >= pos and buf[p] != 40:
                p -= 1
            if p <= pos:
                continue  # "...additional frames elided..." or stray output
            if not newline:
                stop = STOP_END  # cut short at the end of the input
                break
            if nseg % 2 == 1:
                at = _segment(segs, seg_counts, SEG_NONE, buf, pos, pos, pool, at)
                nseg += 1
                if at < 0:
                    stop = STOP_KEYS
                    break
            at = _segment(segs, seg_counts, SEG_FUNC, buf, pos, p, pool, at)
            nseg += 1
            if at < 0:
                stop = STOP_KEYS
                break
        if stop == STOP_MORE:
            _stop(st, STOP_MORE, 0, 0, 0, 0, 0)
            break
        if stop == STOP_KEYS:
            _stop(st, STOP_KEYS, -at, 0, 0, 0, 0)
            break
        if stop == STOP_END:
            _stop(st, STOP_END, CUT_STACK, lineno, start, 0, 0)
            break
        if stop == STOP_ERROR:
            _stop(st, STOP_ERROR, ERR_NESTED_STACK, lineno, start, base + pos, base + b)
            break
        if nseg % 2 == 1:
            at = _segment(segs, seg_counts, SEG_NONE, buf, pos, pos, pool, at)
            if at < 0:
                _stop(st, STOP_KEYS, -at, 0, 0, 0, 0)
                break
        # complete: only now are its keys entered
        sid = _key_id(keys, key_counts, key0, at - key0)
        if sid < 0:
            _stop(st, STOP_KEYS, FULL_KEYS, 0, 0, 0, 0)
            break
        tid = -1
        if t1 > t0:
            k0 = st[ST_POOL]
            if k0 + 1 + t1 - t0 > pool.shape[0]:
                _stop(st, STOP_KEYS, FULL_KEYS, 0, 0, 0, 0)
                break
            pool[k0] = KEY_TYPE
            for k in range(t1 - t0):
                pool[k0 + 1 + k] = buf[t0 + k]
            tid = _key_id(keys, key_counts, k0, 1 + t1 - t0)
            if tid < 0:
                _stop(st, STOP_KEYS, FULL_KEYS, 0, 0, 0, 0)
                break
        out_kind[n] = kind
        out_addr[n] = addr
        out_size[n] = size
        out_type[n] = tid
        out_stack[n] = sid
        n += 1
        pos = nxt
    st[ST_EVENTS] = n
