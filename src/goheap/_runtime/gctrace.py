"""The collector's and scavenger's trace lines: the seed's exact format (GOGCTRACE=1), or today's Go's.

See :mod:`goheap._runtime.gc`. The compiled collector writes one row per collection into
``gctrace_log`` (columns TR_* in ``layout.py``); these functions turn rows into text.
Times are whole milliseconds, truncated; heap sizes are heap_alloc >> 20.
"""

from __future__ import annotations

import re

from . import layout as L
from .goenv import runtime_atoi

__all__ = [
    "GCTRACE_FORMATS",
    "format_gctrace",
    "format_gctrace_modern",
    "format_scvg",
    "gctrace_level_from_environment",
    "parse_gctrace",
    "runtime_atoi",
]

_MS = 1_000_000


def format_gctrace(row) -> str:
    """``gc<N>(<P>): <mark>+<sweep>+<other> ms, <H0> -> <H1> MB <O0> -> <O1> (<nmalloc>-<nfree>) objects, ...``"""
    r = [int(x) for x in row]
    return (
        f"gc{r[L.TR_NUMGC]}({r[L.TR_NPROC]}): "
        f"{r[L.TR_MARK_NS] // _MS}+{r[L.TR_SWEEP_NS] // _MS}+{r[L.TR_OTHER_NS] // _MS} ms, "
        f"{r[L.TR_HEAP0] >> 20} -> {r[L.TR_HEAP1] >> 20} MB "
        f"{r[L.TR_OBJ0]} -> {r[L.TR_OBJ1]} ({r[L.TR_NMALLOC]}-{r[L.TR_NFREE]}) objects, "
        f"{r[L.TR_NHANDOFF]}({r[L.TR_NHANDOFFCNT]}) handoff, "
        f"{r[L.TR_NSTEAL]}({r[L.TR_NSTEALCNT]}) steal, "
        f"{r[L.TR_NPROCYIELD]}/{r[L.TR_NOSYIELD]}/{r[L.TR_NSLEEP]} yields"
    )


def format_scvg(k: int, released: int, mstats) -> list[str]:
    """The scavenger's lines for round k (the released count printed in hex, as the seed's %p does)."""
    st = [int(x) for x in mstats]
    lines = []
    if released:
        lines.append(f"scvg{k}: {released >> 20:#x} MB released\n")
    lines.append(
        f"scvg{k}: inuse: {st[L.ST_HEAP_INUSE] >> 20}, idle: {st[L.ST_HEAP_IDLE] >> 20}, "
        f"sys: {st[L.ST_HEAP_SYS] >> 20}, released: {st[L.ST_HEAP_RELEASED] >> 20}, "
        f"consumed: {(st[L.ST_HEAP_SYS] - st[L.ST_HEAP_RELEASED]) >> 20} (MB)\n"
    )
    return lines


def parse_gctrace(line: str) -> dict[str, int] | None:
    """The fields of one seed-format gctrace line, or None if the line is not one."""
    m = _LINE.match(line.strip())
    if not m:
        return None
    return {k: int(v) for k, v in m.groupdict().items()}


_LINE = re.compile(
    r"gc(?P<numgc>\d+)\((?P<nproc>\d+)\): (?P<mark>\d+)\+(?P<sweep>\d+)\+(?P<other>\d+) ms, "
    r"(?P<heap0>\d+) -> (?P<heap1>\d+) MB (?P<obj0>\d+) -> (?P<obj1>\d+) \((?P<nmalloc>\d+)-(?P<nfree>\d+)\) objects, "
    r"(?P<handoff>\d+)\((?P<handoffcnt>\d+)\) handoff, (?P<steal>\d+)\((?P<stealcnt>\d+)\) steal, "
    r"(?P<procyield>\d+)/(?P<osyield>\d+)/(?P<sleep>\d+) yields"
)


# ---------------------------------------------------------------- the modern format (Go 1.19+)


def _decimal(value: int, decimals: int) -> str:
    """``value / 10**decimals`` with exactly ``decimals`` digits after the point (Go's itoaDiv)."""
    if decimals == 0:
        return str(value)
    digits = str(value).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def _ms(ns: int) -> str:
    """Nanoseconds as milliseconds the way Go's gctrace prints them (fmtNSAsMS).

    10 ms and more in whole milliseconds; below, two significant digits and at most three
    decimals (0.009, 0.20, 2.9); under a microsecond, 0.
    """
    if ns >= 10_000_000:
        return str(ns // _MS)
    us = ns // 1000
    if us == 0:
        return "0"
    decimals = 3
    while us >= 100:
        us //= 10
        decimals -= 1
    return _decimal(us, decimals)


def format_gctrace_modern(row, start_ns: int) -> str:
    """One collection in the format of today's Go (1.19 and later), for ``--gctrace-format modern``::

        gc 3 @0.069s 2%: 0.027+2.1+0.005 ms clock, 0.027+0/2.1/0+0.005 ms cpu, 5->5->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 1 P

    ``start_ns`` is the clock when the heap was built (Go's runtimeInitTime). The seed's
    collector stops the world for the whole collection, so the phases of a concurrent
    collector map onto it as follows, and some fields are constant:

    * clock and cpu times: *sweep termination* is the seed's setup and cleanup around the
      mark (its "other" time), *mark* is its mark, *mark termination* is its sweep (done
      inside the pause, as Go's gcstoptheworld=2 does). CPU time equals clock time (one
      thread runs every proc); assist and idle mark CPU are always 0.
    * heap: ``H0->H1->H2``: H0 and H1 are both the heap when the collection began (nothing
      is allocated during a stop-the-world mark), H2 the heap after it; the goal is the
      next_gc the collection was triggered by (0 for the seed's first collection).
    * ``0 MB stacks, 0 MB globals``: not measured by goheap (its roots are outside the heap).
    * ``%``: the pause time so far against the time since the heap was built.
    * ``P``: the collector procs (work.nproc); ``(forced)`` marks a forced collection.
    """
    r = [int(x) for x in row]
    start = r[L.TR_START_NS]
    end = start + r[L.TR_PAUSE_NS]
    elapsed = end - start_ns
    util = r[L.TR_PAUSE_TOTAL_NS] * 100 // elapsed if elapsed > 0 else 0
    other, mark, sweep = r[L.TR_OTHER_NS], r[L.TR_MARK_NS], r[L.TR_SWEEP_NS]
    heap0, heap2 = r[L.TR_HEAP0] >> 20, r[L.TR_HEAP1] >> 20
    line = (
        f"gc {r[L.TR_NUMGC]} @{_decimal(max(start - start_ns, 0) // _MS, 3)}s {util}%: "
        f"{_ms(other)}+{_ms(mark)}+{_ms(sweep)} ms clock, "
        f"{_ms(other)}+0/{_ms(mark)}/0+{_ms(sweep)} ms cpu, "
        f"{heap0}->{heap0}->{heap2} MB, {r[L.TR_GOAL] >> 20} MB goal, 0 MB stacks, 0 MB globals, "
        f"{r[L.TR_NPROC]} P"
    )
    return line + (" (forced)" if r[L.TR_FORCED] else "")


#: The gctrace line formats: the seed's (default) and today's Go's.
GCTRACE_FORMATS = ("seed", "modern")


def gctrace_level_from_environment(environ) -> int:
    """The gctrace level a Go process would read: GOGCTRACE (the seed's variable, atoi'd),
    else ``gctrace=N`` in GODEBUG (what today's Go reads), else 0."""
    value = environ.get("GOGCTRACE")
    if value:
        return runtime_atoi(value)
    for setting in (environ.get("GODEBUG") or "").split(","):
        key, _, level = setting.strip().partition("=")
        if key == "gctrace":
            return runtime_atoi(level)
    return 0


