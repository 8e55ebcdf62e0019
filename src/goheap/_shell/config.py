"""How a heap is built: :class:`HeapConfig`, GOGC's parsing, and registered types.

See :mod:`goheap.heap` for the shell that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from .. import errors
from .._runtime import layout as L
from .._runtime.constants import FORCE_GC_PERIOD_NS, MAX_MEM, MEM_PROFILE_RATE, SCAVENGE_LIMIT_NS, TYPEINFO_SINGLE_OBJECT
from .._runtime.mallocinit import Limits
from .._runtime.sysmem import OSBackend
from ..race import RaceOptions

__all__ = ["HeapConfig", "TypeInfo", "readgogc"]


def readgogc(value: str | None) -> int:
    """GOGC as the seed parses it: unset or empty 100, "off" -1, else the leading decimal digits (atoi)."""
    if value is None or value == "":
        return 100
    if value == "off":
        return -1
    return atoi(value)


def atoi(value: str | None) -> int:
    """The runtime's atoi: leading decimal digits only (no sign), accumulated in an int32 that wraps."""
    n = 0
    for ch in value or "":
        if not "0" <= ch <= "9":
            break
        n = (n * 10 + ord(ch) - ord("0")) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


@dataclass(frozen=True)
class HeapConfig:
    """How to build a heap. Every default is the seed's.

    gcpercent / gctrace: None reads GOGC / GOGCTRACE from the environment, as the seed does.
    nproc: collector procs (work.nproc), at most 8 (MaxGcproc) as the seed's gcprocs allows;
    with more than one, the procs' mark and sweep are interleaved deterministically (see
    ``goheap._runtime.gc.gchelper``) and gctrace shows their handoffs, steals and yields.
    virtual_clock: the runtime's clock is ``start_time_ns`` and moves only with
    :meth:`Heap.advance_clock` (deterministic pauses, scavenger and LastGC).
    force_gc_period_ns / scavenge_limit_ns: the scavenger's policy (2 and 5 minutes); it
    wakes every min(both)/2. scavenger_thread: run it on a daemon thread in real time
    (off by default; a collection can then happen between any two heap calls).
    go_process: the runtime allocates its own blocks as a Go process's does: each
    collection runs on a heap-allocated stack segment, and the first one allocates its
    ParFor descriptors (see :mod:`goheap.workloads.goprocess` for the rest of a process).
    race: race mode (``go run -race``): shadow memory for the heap and data-race reports
    (:mod:`goheap.race`); race_options: GORACE's options, None reads the GORACE variable.
    """

    arena_size: int = MAX_MEM
    gcpercent: int | None = None
    gctrace: int | None = None
    trace_stream: TextIO | None = None
    memprofilerate: int = MEM_PROFILE_RATE
    nproc: int = 1
    virtual_clock: bool = False
    start_time_ns: int = 0
    force_gc_period_ns: int = FORCE_GC_PERIOD_NS
    scavenge_limit_ns: int = SCAVENGE_LIMIT_NS
    scavenger_thread: bool = False
    enable_gc: bool = True
    go_process: bool = False
    os: OSBackend | None = None
    limits: Limits = field(default_factory=Limits)
    race: bool = False
    race_options: RaceOptions | None = None


@dataclass(frozen=True)
class TypeInfo:
    """A registered type: its size and the byte offsets of its pointer words."""

    id: int
    name: str
    size: int
    pointer_offsets: tuple[int, ...]

    def word(self, tag: int = TYPEINFO_SINGLE_OBJECT) -> int:
        """The settype word: id << 3 | TypeInfo tag."""
        return (self.id << L.TYPE_TAG_BITS) | tag


def check_config(config: HeapConfig) -> None:
    if isinstance(config.nproc, bool) or not isinstance(config.nproc, int) or config.nproc < 1:
        raise errors.ConfigError(f"nproc must be a positive int, not {config.nproc!r}")
    if config.gcpercent is not None and (isinstance(config.gcpercent, bool) or not isinstance(config.gcpercent, int)):
        raise errors.ConfigError(f"gcpercent must be an int or None, not {config.gcpercent!r}")
    if min(config.force_gc_period_ns, config.scavenge_limit_ns) < 2:
        raise errors.ConfigError("force_gc_period_ns and scavenge_limit_ns must be at least 2 ns (the tick is half the smaller)")
    if config.scavenger_thread and config.virtual_clock:
        raise errors.ConfigError("scavenger_thread runs in real time; it cannot drive a virtual clock")

