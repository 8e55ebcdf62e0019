"""The collector's and scavenger's trace lines, in the seed's exact format (GOGCTRACE=1).

See :mod:`goheap._runtime.gc`. The compiled collector writes one row per collection into
``gctrace_log`` (columns TR_* in ``layout.py``); these functions turn rows into text.
Times are whole milliseconds, truncated; heap sizes are heap_alloc >> 20.
"""

from __future__ import annotations

import re

from . import layout as L

__all__ = ["format_gctrace", "format_scvg", "parse_gctrace"]

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
