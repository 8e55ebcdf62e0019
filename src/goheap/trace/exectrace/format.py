"""The wire format of Go's execution traces (Go 1.22+, "v2"): versions, event kinds, limits.

A trace file starts with a 16-byte header, ``go 1.NN trace`` padded with NUL bytes, where
1.NN is the version of the *format*, not of Go: Go 1.22 writes 1.22, Go 1.23 and 1.24
write 1.23, Go 1.25 writes 1.25, Go 1.26 and 1.27 write 1.26. After it come batches; an
event inside a batch is one byte of kind followed by its arguments, each an unsigned
LEB128 varint. How many arguments each kind has, and which kinds exist, is the table
:data:`EVENTS` (kinds are only ever added, at the end, so one table serves every version
with a per-version bound, :data:`LAST_EVENT`).

A *timed* event's first argument is its time since the previous event of its batch (the
first: since the batch's own timestamp), in ticks of the generation's frequency.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "EVENTS",
    "HEADER_SIZE",
    "LAST_EVENT",
    "MAX_BATCH_SIZE",
    "MAX_FRAMES_PER_STACK",
    "MAX_STRING_SIZE",
    "SUPPORTED_VERSIONS",
    "EventKind",
    "event_tables",
    "go_versions",
    "parse_header",
]

HEADER_SIZE = 16
_HEADER_PREFIX = b"go 1."
_HEADER_SUFFIX = b" trace"

#: Format versions goheap reads (the NN of the header).
SUPPORTED_VERSIONS = (22, 23, 25, 26)

# Limits the runtime itself keeps (the format changes version if one shrinks); goheap
# refuses anything larger, so no length read from a file can make it allocate more.
MAX_BATCH_SIZE = 64 << 10
MAX_FRAMES_PER_STACK = 128
MAX_STRING_SIZE = 1 << 10


class EventKind(NamedTuple):
    """One kind of event: its wire number, name, and number of varint arguments."""

    number: int
    name: str
    nargs: int
    timed: bool


def _kinds(first: int, names: str, nargs: tuple[int, ...], timed: bool) -> list[EventKind]:
    return [EventKind(first + i, n, a, timed) for i, (n, a) in enumerate(zip(names.split(), nargs, strict=True))]


# Structural kinds appear only at the head of their own batches (or are batch headers).
_STRUCTURAL = _kinds(1, "EventBatch Stacks Stack Strings String CPUSamples CPUSample Frequency",
                     (4, 0, 2, 0, 1, 0, 5, 1), False)  # fmt: skip
_TIMED = _kinds(
    9,
    "ProcsChange ProcStart ProcStop ProcSteal ProcStatus GoCreate GoCreateSyscall GoStart "
    "GoDestroy GoDestroySyscall GoStop GoBlock GoUnblock GoSyscallBegin GoSyscallEnd "
    "GoSyscallEndBlocked GoStatus STWBegin STWEnd GCActive GCBegin GCEnd GCSweepActive "
    "GCSweepBegin GCSweepEnd GCMarkAssistActive GCMarkAssistBegin GCMarkAssistEnd HeapAlloc "
    "HeapGoal GoLabel UserTaskBegin UserTaskEnd UserRegionBegin UserRegionEnd UserLog "
    "GoSwitch GoSwitchDestroy GoCreateBlocked GoStatusStack",
    (3, 3, 1, 4, 3, 4, 2, 3, 1, 1, 3, 3, 4, 3, 1, 1, 4, 3, 1, 2, 3, 2, 2, 2, 3, 2, 2, 1, 2, 2, 2,
     5, 3, 4, 4, 5, 3, 3, 4, 5),
    True,
)  # fmt: skip
_LATER = [
    EventKind(49, "ExperimentalBatch", 4, False),
    EventKind(50, "Sync", 0, False),
    EventKind(51, "ClockSnapshot", 4, True),
    EventKind(52, "EndOfGeneration", 0, False),
]
# The AllocFree experiment (Go 1.23+): numbered from 128 up.
_ALLOCFREE = _kinds(
    128,
    "Span SpanAlloc SpanFree HeapObject HeapObjectAlloc HeapObjectFree GoroutineStack "
    "GoroutineStackAlloc GoroutineStackFree",
    (4, 4, 2, 3, 3, 2, 3, 3, 2),
    True,
)

#: Every event kind, by wire number.
EVENTS: dict[int, EventKind] = {k.number: k for k in _STRUCTURAL + _TIMED + _LATER + _ALLOCFREE}
_NUMBERS = {k.name: k.number for k in EVENTS.values()}
EV_EVENT_BATCH = _NUMBERS["EventBatch"]
EV_STACKS = _NUMBERS["Stacks"]
EV_STACK = _NUMBERS["Stack"]
EV_STRINGS = _NUMBERS["Strings"]
EV_STRING = _NUMBERS["String"]
EV_CPU_SAMPLES = _NUMBERS["CPUSamples"]
EV_FREQUENCY = _NUMBERS["Frequency"]
EV_PROC_START = _NUMBERS["ProcStart"]
EV_PROC_STOP = _NUMBERS["ProcStop"]
EV_PROC_STATUS = _NUMBERS["ProcStatus"]
EV_GO_SYSCALL_END_BLOCKED = _NUMBERS["GoSyscallEndBlocked"]
EV_GC_ACTIVE = _NUMBERS["GCActive"]
EV_GC_BEGIN = _NUMBERS["GCBegin"]
EV_GC_END = _NUMBERS["GCEnd"]
EV_HEAP_ALLOC = _NUMBERS["HeapAlloc"]
EV_HEAP_GOAL = _NUMBERS["HeapGoal"]
EV_EXPERIMENTAL_BATCH = _NUMBERS["ExperimentalBatch"]
EV_SYNC = _NUMBERS["Sync"]
EV_CLOCK_SNAPSHOT = _NUMBERS["ClockSnapshot"]
EV_END_OF_GENERATION = _NUMBERS["EndOfGeneration"]
EV_SPAN = _NUMBERS["Span"]
EV_SPAN_ALLOC = _NUMBERS["SpanAlloc"]
EV_SPAN_FREE = _NUMBERS["SpanFree"]
EV_HEAP_OBJECT = _NUMBERS["HeapObject"]
EV_HEAP_OBJECT_ALLOC = _NUMBERS["HeapObjectAlloc"]
EV_HEAP_OBJECT_FREE = _NUMBERS["HeapObjectFree"]
EV_GOROUTINE_STACK = _NUMBERS["GoroutineStack"]
EV_GOROUTINE_STACK_FREE = _NUMBERS["GoroutineStackFree"]
#: The AllocFree experiment's number in an experimental batch's header.
EXPERIMENT_ALLOCFREE = 1
#: The first byte of an AllocFree experimental batch: what it holds.
ALLOCFREE_TYPES_BATCH = 0
ALLOCFREE_INFO_BATCH = 1

#: The last core (non-experimental) kind each format version knows.
LAST_EVENT = {22: 44, 23: 49, 25: 51, 26: 52}
#: The first experimental kind, and one past the last.
EXPERIMENTAL = (128, 137)


def event_tables(version: int) -> tuple[np.ndarray, np.ndarray]:
    """(nargs, timed) arrays over the 256 kind bytes for ``version``: nargs -1 for a kind
    that version does not have; timed 1 for the kinds an event batch may hold."""
    nargs = np.full(256, -1, np.int8)
    timed = np.zeros(256, np.uint8)
    for k in EVENTS.values():
        experimental = EXPERIMENTAL[0] <= k.number < EXPERIMENTAL[1]
        if k.number <= LAST_EVENT[version] or (experimental and version >= 23):
            nargs[k.number] = k.nargs
            timed[k.number] = k.timed
    return nargs, timed


def go_versions(version: int) -> str:
    """The Go releases that write format ``version`` (``"1.26 or 1.27"``)."""
    return {22: "1.22", 23: "1.23 or 1.24", 25: "1.25", 26: "1.26 or 1.27"}[version]


def parse_header(head: bytes) -> int | None:
    """The format version of a trace starting with ``head``, or None if it is no Go trace.

    A header naming a version goheap does not read still returns it; the caller says so.
    """
    if len(head) < HEADER_SIZE or not head.startswith(_HEADER_PREFIX):
        return None
    rest = head[len(_HEADER_PREFIX) : HEADER_SIZE]
    digits = rest.split(b" ", 1)[0]
    if not digits.isdigit() or not rest[len(digits) :].startswith(_HEADER_SUFFIX):
        return None
    if rest[len(digits) + len(_HEADER_SUFFIX) :].strip(b"\0"):
        return None
    return int(digits)
