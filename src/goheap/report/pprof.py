"""Heap profiles in pprof's ``profile.proto`` format.

Format
------
``go tool pprof`` (and the standalone ``pprof``) read a protocol buffer
message ``perftools.profiles.Profile`` (schema: github.com/google/pprof,
``proto/profile.proto``; our copy of the schema is built in
:mod:`goheap.report.profile_schema`), gzip-compressed on disk.  A profile is
a list of *samples*; each sample is a call stack (a list of *location* ids,
leaf first) plus one integer per *sample type*.  Locations point at
*functions* (name, file) and carry a line number.  Every string lives once in
``string_table`` (whose entry 0 is always ``""``) and messages refer to it by
index.

The profile written here is self-describing: function names, file names and
line numbers are in the profile itself, and the single (fake) mapping
announces ``has_functions``/``has_filenames``/``has_line_numbers`` so that
pprof does not try to symbolize addresses against a binary it cannot find.

Sample types
------------
Like the heap profile written by Go's ``runtime/pprof``, each sample has four
values, in this order:

=================  =======  ====================================================
type               unit     meaning
=================  =======  ====================================================
``alloc_objects``  count    objects allocated at this stack since start
``alloc_space``    bytes    bytes allocated at this stack since start
``inuse_objects``  count    objects allocated here and not yet freed
``inuse_space``    bytes    bytes allocated here and not yet freed (default)
=================  =======  ====================================================

``period_type`` is ``space/bytes`` and ``period`` is the sampling rate (Go's
``runtime.MemProfileRate``).  Each sample also carries a numeric label
``bytes`` holding the average object size at that stack (as Go does), which
``go tool pprof -tags`` shows.

Scaling
-------
The allocator records a *sample* of allocations: each allocated byte is
picked with probability ``1/rate`` (a Poisson process), so an object of
``s`` bytes ends up in the profile with probability ``1 - exp(-s/rate)``.
The :class:`HeapSample` counts are these raw, sampled numbers (like Go's
``runtime.MemProfileRecord``); the profile stores *estimates of the true
totals*, obtained by dividing each pair (objects, bytes) by the probability
that an object of the pair's average size was sampled - see
:func:`scale_heap_sample`.  With ``rate <= 1`` every allocation was recorded
(or the rate is unknown) and nothing is scaled.

Viewing
-------
::

    go tool pprof -top FILE                          # in-use bytes, flat/cum table
    go tool pprof -top -sample_index=alloc_space FILE
    go tool pprof -traces FILE                       # every sample with its stack
    go tool pprof -http=: FILE                       # web UI (graph, flame graph)

(``pprof`` from github.com/google/pprof accepts the same arguments.)
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from goheap.atomicfile import atomic_write
from goheap.report import profile_schema as pb

__all__ = [
    "RUNTIME_ORIGIN_FRAMES",
    "SAMPLE_TYPES",
    "Frame",
    "HeapSample",
    "build_heap_profile",
    "read_profile",
    "scale_heap_sample",
    "write_heap_profile",
]

#: (type, unit) of each sample value, in order.
SAMPLE_TYPES: tuple[tuple[str, str], ...] = (
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
)
_PERIOD_TYPE = ("space", "bytes")
_DEFAULT_SAMPLE_TYPE = "inuse_space"
# Name of the single placeholder mapping all locations belong to.
_MAPPING_NAME = "goheap"

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Frame:
    """One call-stack frame: a function, and where in its source we were."""

    function: str
    filename: str = ""
    line: int = 0


def _runtime_frames(*names: tuple[str, str]) -> tuple[Frame, ...]:
    return tuple(Frame(f"runtime.{function}", f"$GOROOT/src/pkg/runtime/{file}") for function, file in names)


#: The runtime frames above the program's stack for each of the runtime's own allocations
#: that the profile samples (``goheap._runtime.layout.PROF_ORIGIN_*``), innermost first, as
#: Go's profiler records them: a span's type array made when runtime.new's settype buffer
#: fills or when a collection flushes it, the collector's ParFor descriptors, the
#: finalizer table. (No line numbers: goheap does not run the runtime's source.)
RUNTIME_ORIGIN_FRAMES: dict[int, tuple[Frame, ...]] = {
    1: _runtime_frames(("settype_flush", "malloc.goc"), ("settype", "malloc.goc"), ("new", "malloc.goc")),
    2: _runtime_frames(("settype_flush", "malloc.goc"), ("gc", "mgc0.c"), ("mallocgc", "malloc.goc")),
    3: _runtime_frames(("parforalloc", "parfor.c"), ("gc", "mgc0.c"), ("mallocgc", "malloc.goc")),
    4: _runtime_frames(("addfinalizer", "mfinal.c"), ("SetFinalizer", "malloc.goc")),
}


@dataclass
class HeapSample:
    """Raw (sampled, unscaled) allocation counts for one call stack.

    Mirrors Go's ``runtime.MemProfileRecord``: ``alloc_*`` count every sampled
    allocation made at ``stack``; ``inuse_*`` those not yet freed (Go's
    ``AllocObjects - FreeObjects`` and ``AllocBytes - FreeBytes``).
    ``stack`` is innermost frame first.
    """

    stack: tuple[Frame, ...]
    alloc_objects: int
    alloc_bytes: int
    inuse_objects: int
    inuse_bytes: int


def scale_heap_sample(count: int, size: int, rate: int) -> tuple[int, int]:
    """Estimate the true (objects, bytes) behind a sampled pair.

    ``count`` sampled objects totalling ``size`` bytes have an average size
    ``a = size / count``.  With a sampling rate of ``rate`` bytes, an object of
    ``a`` bytes is sampled with probability ``p = 1 - exp(-a / rate)``, so the
    unsampled totals are estimated as ``count / p`` and ``size / p``, each
    truncated toward zero.  An empty pair (``count == 0`` or ``size == 0``)
    gives ``(0, 0)``; ``rate <= 1`` means everything was recorded (or the rate
    is unknown) and the pair is returned unchanged.

    This is the estimate Go's ``runtime/pprof`` applies when writing heap
    profiles, computed in double precision as Go does.
    """
    if count == 0 or size == 0:
        return 0, 0
    if rate <= 1:
        return count, size
    average = float(size) / float(count)
    # -expm1(-x) == 1 - exp(-x); Go uses the plain form.  Keep Go's
    # arithmetic so results match its profiles to the last truncated unit.
    scale = 1.0 / (1.0 - math.exp(-average / float(rate)))
    return int(float(count) * scale), int(float(size) * scale)


class _StringTable:
    """Interns strings; index 0 is always the empty string."""

    def __init__(self) -> None:
        self.strings: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        i = self._index.get(s)
        if i is None:
            i = len(self.strings)
            self.strings.append(s)
            self._index[s] = i
        return i


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # numpy integers are fine; anything else integral is accepted too.
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an integer, got {value!r}") from None
        if as_int != value:
            raise TypeError(f"{name} must be an integer, got {value!r}")
        value = as_int
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def build_heap_profile(
    samples: Iterable[HeapSample],
    *,
    rate: int,
    time_nanos: int = 0,
    duration_nanos: int = 0,
    comments: Iterable[str] = (),
) -> bytes:
    """Serialize ``samples`` as an uncompressed pprof heap ``Profile``.

    ``rate`` is the sampling rate the counts were collected with (bytes per
    sample on average; ``<= 1`` means every allocation was recorded).  It is
    stored as the profile's ``period`` and used to scale every value with
    :func:`scale_heap_sample`.  ``time_nanos`` (collection time, ns since the
    epoch) and ``duration_nanos`` are stored as given (0 leaves them unset);
    each of ``comments`` becomes a profile comment.

    Functions are deduplicated by (name, file) and locations by frame; both
    get ids 1, 2, ... in order of first appearance.  Samples are written in
    the order given, including samples whose values are all zero (Go keeps
    those too).  Use :func:`write_heap_profile` for a file ``go tool pprof``
    can open directly.
    """
    rate = int(rate)
    strings = _StringTable()
    profile = pb.Profile()

    for type_name, unit in SAMPLE_TYPES:
        profile.sample_type.add(type=strings(type_name), unit=strings(unit))
    profile.period_type.type = strings(_PERIOD_TYPE[0])
    profile.period_type.unit = strings(_PERIOD_TYPE[1])
    profile.period = rate
    profile.default_sample_type = strings(_DEFAULT_SAMPLE_TYPE)
    profile.time_nanos = int(time_nanos)
    profile.duration_nanos = int(duration_nanos)
    for comment in comments:
        profile.comment.append(strings(str(comment)))

    # One placeholder mapping: there is no binary to symbolize against, and
    # the flags tell pprof that the locations already carry symbol info.
    profile.mapping.add(
        id=1,
        filename=strings(_MAPPING_NAME),
        has_functions=True,
        has_filenames=True,
        has_line_numbers=True,
    )

    function_ids: dict[tuple[str, str], int] = {}
    location_ids: dict[Frame, int] = {}
    bytes_key = strings("bytes")

    def location_id(frame: Frame) -> int:
        loc_id = location_ids.get(frame)
        if loc_id is not None:
            return loc_id
        if not isinstance(frame, Frame):
            raise TypeError(f"stack entries must be Frame, got {frame!r}")
        fkey = (frame.function, frame.filename)
        func_id = function_ids.get(fkey)
        if func_id is None:
            func_id = len(function_ids) + 1
            function_ids[fkey] = func_id
            name = strings(frame.function)
            profile.function.add(
                id=func_id,
                name=name,
                system_name=name,
                filename=strings(frame.filename),
            )
        loc_id = len(location_ids) + 1
        location_ids[frame] = loc_id
        # Each location gets a distinct synthetic address, so that tools
        # keying locations by (mapping, address) never merge two frames.
        loc = profile.location.add(id=loc_id, mapping_id=1, address=loc_id)
        loc.line.add(function_id=func_id, line=int(frame.line))
        return loc_id

    for sample in samples:
        alloc_objects = _check_count("alloc_objects", sample.alloc_objects)
        alloc_bytes = _check_count("alloc_bytes", sample.alloc_bytes)
        inuse_objects = _check_count("inuse_objects", sample.inuse_objects)
        inuse_bytes = _check_count("inuse_bytes", sample.inuse_bytes)

        out = profile.sample.add()
        out.location_id.extend(location_id(frame) for frame in sample.stack)
        out.value.extend(
            scale_heap_sample(alloc_objects, alloc_bytes, rate)
            + scale_heap_sample(inuse_objects, inuse_bytes, rate)
        )
        # Average object size at this stack, as Go's heap profiles record.
        if alloc_objects > 0:
            block_size = alloc_bytes // alloc_objects
            if block_size:
                out.label.add(key=bytes_key, num=block_size)

    # The mapping covers every synthetic address handed out above.
    profile.mapping[0].memory_start = 0
    profile.mapping[0].memory_limit = len(location_ids) + 1

    profile.string_table.extend(strings.strings)
    return profile.SerializeToString()


def write_heap_profile(
    path: str | os.PathLike[str],
    samples: Iterable[HeapSample],
    *,
    rate: int,
    time_nanos: int = 0,
    duration_nanos: int = 0,
    comments: Iterable[str] = (),
) -> None:
    """Write a gzip-compressed heap profile to ``path``.

    Arguments are those of :func:`build_heap_profile`.  The result is what
    ``go tool pprof`` expects on disk, e.g. ``go tool pprof -top PATH``.
    """
    data = build_heap_profile(
        samples,
        rate=rate,
        time_nanos=time_nanos,
        duration_nanos=duration_nanos,
        comments=comments,
    )
    # mtime=0 keeps the output byte-for-byte reproducible; complete or not at all
    with atomic_write(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0
    ) as gz:
        gz.write(data)


def read_profile(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview) -> Any:
    """Decode a pprof profile into a ``perftools.profiles.Profile`` message.

    Accepts a file path or the profile's bytes, gzip-compressed or not.  The
    returned message's fields are those of profile.proto (e.g.
    ``p.string_table[p.function[0].name]``).
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    profile = pb.Profile()
    profile.ParseFromString(data)
    return profile
