"""Policies as data: the size-class table and page size, the pacer and the scavenger of a heap.

goheap runs the 2013 allocator and collector. A :class:`Policy` changes the numbers they
run with, nothing else: every policy runs the same stop-the-world mark-sweep collector of
February 2013. Presets change allocation and pacing policy, not the collector's
concurrency (Go >= 1.5 marks concurrently with the program; goheap never does).

A policy has three parts, each a frozen dataclass:

- :class:`SizeClassTable`: the small-object classes as (bytes/obj, pages/span) rows and the
  page size they are cut from. The seed's (msize.c's algorithm on 4 KB pages, 61 classes),
  Go 1.22-1.27's (68 classes on 8 KB pages), msize.c's algorithm with other parameters, or
  an explicit table. The runtime's lookups, transfer counts, span carving, page heap, span
  map, BySize stats and scavenger all follow it.
- :class:`Pacer`: when the next collection starts. The seed's rule is heap_alloc x (1 +
  GOGC/100) after each collection, starting from 0. Go >= 1.5 adds a minimum heap (4 MB x
  GOGC/100); Go >= 1.19 a soft memory limit (GOMEMLIMIT) that lowers the goal.
- :class:`Scavenger`: when free memory goes back to the OS. The seed's returns spans idle
  for 5 minutes and forces a collection after 2 minutes without one; Go 1.19's keeps the
  retained heap at the heap goal + 10% (and under 95% of a memory limit).

The presets (:data:`PRESETS`, ``goheap policies``): ``seed`` (the default), ``go1.27-classes``,
``modern-pacer`` and ``modern``. A policy can also be read from a TOML file
(:meth:`Policy.load`) and is serialisable (:meth:`Policy.to_dict`, :meth:`Policy.from_dict`):
the same dictionary, with the same keys as the file. Where each part enters the runtime is
told in the "Policies" section of the overview essay (``goheap._runtime.malloc``).

A policy file::

    name = "big-pages"            # default: the file's stem
    based_on = "seed"             # parts not given come from this preset (default: seed)

    [size_classes]
    source = "computed"           # seed | go1.27 (or another goX.Y) | computed | table
    page_size = 16384
    tail_waste_divisor = 8        # computed: msize.c's parameters (see sizeclasses.msize)

    [pacer]
    min_heap = "4MiB"             # at GOGC=100, scaled by GOGC/100 as Go does; 0: none
    memory_limit = "off"          # or a byte count: 512MiB, 2GiB, 1000000
    gomemlimit = true             # without a memory_limit, read $GOMEMLIMIT

    [scavenger]
    force_gc_period_ns = 120_000_000_000
    release_idle_after_ns = "off"  # the seed's rule: release spans idle this long
    retain_extra_percent = 10      # Go 1.19's rule: keep at most the heap goal + this %

With ``source = "table"``, ``rows = [[8, 1], [16, 1], [32, 1], ...]`` lists each class's
bytes per object and pages per span.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ._runtime.constants import FORCE_GC_PERIOD_NS, MAX_SIZE_CLASSES, MAX_SMALL_SIZE, PAGE_SIZE, SCAVENGE_LIMIT_NS
from ._runtime.gosizeclasses import GO_PAGE_SIZE, GO_SIZE_CLASSES, go_size_classes
from ._runtime.sizeclasses import LARGE_SIZE_DIV, SMALL_LOOKUP_LIMIT, SizeClasses, from_rows, msize
from .errors import ConfigError

__all__ = [
    "MAX_SIZE_CLASSES",
    "PRESETS",
    "SEED",
    "Pacer",
    "Policy",
    "PolicyError",
    "Scavenger",
    "SizeClassTable",
    "format_bytes",
    "parse_byte_count",
]

MIN_PAGE_SIZE = 4096
MAX_PAGE_SIZE = 64 << 10
GO_HEAP_MINIMUM = 4 << 20  # Go >= 1.5's defaultHeapMinimum (runtime/mgcpacer.go), at GOGC=100
GO_RETAIN_EXTRA_PERCENT = 10  # Go 1.19's retainExtraPercent (runtime/mgcscavenge.go)
INT64_MAX = (1 << 63) - 1


class PolicyError(ConfigError):
    """A policy goheap cannot build: an unknown preset, a bad policy file or dictionary (named with the key at fault)."""

    __module__ = "goheap"


# ================================================================ byte counts (GOMEMLIMIT's syntax)

_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_byte_count(value: object) -> int:
    """A byte count as GOMEMLIMIT writes it: digits with an optional B, KiB, MiB, GiB or TiB suffix.

    The rules are runtime.parseByteCount's: no sign, no spaces, no decimal point, powers of
    two only (``MB`` is not a unit), at most MaxInt64. An int passes through (if not negative).
    Raises ValueError.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not a byte count")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"byte count {value} is negative")
        return value
    unit = next((u for u in ("KiB", "MiB", "GiB", "TiB", "B") if value.endswith(u)), "")
    digits = value[: len(value) - len(unit)]
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{value!r} is not a byte count (digits, then optionally B, KiB, MiB, GiB or TiB: 512MiB)")
    n = int(digits) * _UNITS.get(unit, 1)
    if n > INT64_MAX:
        raise ValueError(f"{value!r} is more than the largest byte count ({INT64_MAX})")
    return n


def format_bytes(n: int) -> str:
    """n in the largest binary unit that divides it: ``64 MiB``, ``1536 KiB``, ``100 B``."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]} {unit}"
    return f"{n} B"


def _format_ns(ns: int) -> str:
    return f"{ns // 10**9} s" if ns % 10**9 == 0 else f"{ns} ns"


# ================================================================ reading dictionaries (and TOML files)


class _Reader:
    """Takes the keys of one table of a policy dictionary, naming file and key in every error."""

    def __init__(self, data, where: str, table: str):
        self.where = where
        self.table = table
        if not isinstance(data, dict):
            raise self.error(None, f"must be a table, not {data!r}")
        self.data = dict(data)

    def error(self, key: str | None, why: str) -> PolicyError:
        place = f"[{self.table}]" if self.table else ""
        if key is not None:
            place = f"{place} {key}" if place else key
        return PolicyError(f"{self.where}: {place}: {why}" if place else f"{self.where}: {why}")

    def take(self, key: str, kind, default):
        if key not in self.data:
            return default
        value = self.data.pop(key)
        try:
            return kind(value)
        except (TypeError, ValueError) as exc:
            raise self.error(key, str(exc)) from None

    def done(self) -> None:
        if self.data:
            raise self.error(sorted(self.data)[0], "unknown key")


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _bool(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _str(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _off_or(kind):
    def convert(value):
        return None if value == "off" else kind(value)

    return convert


def _rows(value) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError("must be a non-empty list of [bytes/obj, pages/span] rows")
    out = []
    for i, row in enumerate(value):
        if not isinstance(row, (list, tuple)) or len(row) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in row):
            raise ValueError(f"row {i + 1} is {row!r}, not [bytes/obj, pages/span]")
        out.append((row[0], row[1]))
    return tuple(out)


def _part_from_dict(cls, data, where: str, table: str, base, converters: dict):
    """A Pacer or Scavenger from its table of a policy dictionary: each key converted, the rest from ``base``."""
    r = _Reader(data, where, table)
    kw = {key: r.take(key, convert, getattr(base, key)) for key, convert in converters.items()}
    r.done()
    try:
        return cls(**kw)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None


# ================================================================ size classes


_COMPUTED_DEFAULTS = {
    "tail_waste_divisor": 8,
    "align16_from": 16,
    "eighth_from": 128,
    "align256_from": 2048,
    "stretch": False,
}


@dataclass(frozen=True)
class SizeClassTable:
    """The small-object size classes 1..N, as (bytes/obj, pages/span) rows, and their page size.

    ``source`` says where the rows come from: ``seed`` (msize.c's InitSizes, as the 2013
    runtime computed them), ``goX.Y`` (Go's generated table of that release),
    ``computed`` (msize.c's algorithm with ``params``) or ``table`` (given row by row).
    Build one with :meth:`seed`, :meth:`go`, :meth:`computed` or :meth:`table`: they validate.
    """

    source: str
    page_size: int
    rows: tuple[tuple[int, int], ...] = field(repr=False)
    params: tuple[tuple[str, object], ...] = ()

    # ------------------------------------------------------------ constructors

    @classmethod
    def seed(cls) -> SizeClassTable:
        """msize.c's 61 classes (60 small) on 4 KB pages."""
        return cls("seed", PAGE_SIZE, tuple(msize()))

    @classmethod
    def go(cls, version: str = "1.27") -> SizeClassTable:
        """Go's generated table of release ``version`` (8 KB pages)."""
        version = version[2:] if version.startswith("go") else version
        return cls(f"go{version}", GO_PAGE_SIZE, go_size_classes(version))

    @classmethod
    def computed(cls, page_size: int = PAGE_SIZE, *, where: str = "[size_classes]", **params) -> SizeClassTable:
        """msize.c's algorithm with other numbers (see :func:`goheap._runtime.sizeclasses.msize`)."""
        unknown = sorted(set(params) - set(_COMPUTED_DEFAULTS))
        if unknown:
            raise PolicyError(f"{where} {unknown[0]}: not a parameter of the computed table (known: {', '.join(_COMPUTED_DEFAULTS)})")
        _check_page_size(page_size, where)
        full = {**_COMPUTED_DEFAULTS, **params}
        for key in ("tail_waste_divisor", "align16_from", "eighth_from", "align256_from"):
            if isinstance(full[key], bool) or not isinstance(full[key], int) or full[key] < 1:
                raise PolicyError(f"{where} {key}: {full[key]!r} is not a positive integer")
        if not isinstance(full["stretch"], bool):
            raise PolicyError(f"{where} stretch: {full['stretch']!r} is not true or false")
        rows = tuple(msize(page_size=page_size, **full))
        _check_rows(rows, page_size, f"{where} (computed)")
        return cls("computed", page_size, rows, tuple(sorted(full.items())))

    @classmethod
    def table(cls, rows, page_size: int = PAGE_SIZE, *, where: str = "[size_classes]") -> SizeClassTable:
        """An explicit table: classes 1..N as (bytes/obj, pages/span) rows, validated."""
        _check_page_size(page_size, where)
        try:
            rows = _rows(rows)
        except ValueError as exc:
            raise PolicyError(f"{where} rows: {exc}") from None
        _check_rows(rows, page_size, f"{where} rows")
        return cls("table", page_size, rows)

    # ------------------------------------------------------------ what it is

    @property
    def num_classes(self) -> int:
        """NumSizeClasses: the small classes plus class 0 ("large")."""
        return len(self.rows) + 1

    @property
    def max_small_size(self) -> int:
        """The largest class: requests above it are large objects (a span each)."""
        return self.rows[-1][0]

    def build(self) -> SizeClasses:
        """The runtime's tables for these classes (lookups, transfer counts)."""
        return _build(self.rows, self.page_size)

    def go_rows(self) -> list[tuple[int, int, int, int, int, float]]:
        """One row per class in the columns of Go's generated table: (class, bytes/obj, bytes/span,
        objects, tail waste, max waste %). Max waste is the worst case of one span: every
        object the smallest request of its class (one byte over the previous class), plus the tail.
        """
        out = []
        prev = 0
        for c, (size, npages) in enumerate(self.rows, start=1):
            span = npages * self.page_size
            objects = span // size
            tail = span - objects * size
            out.append((c, size, span, objects, tail, 100 * ((size - prev - 1) * objects + tail) / span))
            prev = size
        return out

    def describe(self) -> str:
        what = {"seed": "msize.c", "computed": "msize.c's algorithm", "table": "a table"}.get(self.source, f"Go {self.source[2:]}")
        if self.source == "computed":
            changed = [f"{k}={v}" for k, v in self.params if _COMPUTED_DEFAULTS[k] != v]
            what += f" with {', '.join(changed)}" if changed else ""
        return f"{what} ({self.num_classes} classes, {self.page_size}-byte pages)"

    # ------------------------------------------------------------ as data

    def to_dict(self) -> dict:
        out: dict = {"source": self.source, "page_size": self.page_size}
        out.update(dict(self.params))
        if self.source == "table":
            out["rows"] = [list(r) for r in self.rows]
        return out

    @classmethod
    def from_dict(cls, data, where: str = "policy") -> SizeClassTable:
        r = _Reader(data, where, "size_classes")
        source = r.take("source", _str, "seed")
        if source == "seed":
            page_size = r.take("page_size", _int, PAGE_SIZE)
            r.done()
            if page_size != PAGE_SIZE:
                raise r.error("page_size", f"the seed's classes are for {PAGE_SIZE}-byte pages (use source = \"computed\" for others)")
            return cls.seed()
        if source.startswith("go"):
            page_size = r.take("page_size", _int, GO_PAGE_SIZE)
            r.done()
            if source[2:] not in GO_SIZE_CLASSES:
                raise r.error("source", f"no size-class table for {source} (known: {', '.join('go' + v for v in GO_SIZE_CLASSES)})")
            if page_size != GO_PAGE_SIZE:
                raise r.error("page_size", f"Go's classes are for {GO_PAGE_SIZE}-byte pages")
            return cls.go(source)
        if source == "computed":
            page_size = r.take("page_size", _int, PAGE_SIZE)
            params = {k: r.take(k, _bool if k == "stretch" else _int, v) for k, v in _COMPUTED_DEFAULTS.items()}
            r.done()
            return cls.computed(page_size, where=f"{where}: [size_classes]", **params)
        if source == "table":
            page_size = r.take("page_size", _int, PAGE_SIZE)
            if "rows" not in r.data:
                raise r.error("rows", "missing: a table needs its rows, [[bytes/obj, pages/span], ...]")
            rows = r.data.pop("rows")
            r.done()
            return cls.table(rows, page_size, where=f"{where}: [size_classes]")
        raise r.error("source", f"{source!r} is not one of seed, goX.Y (go1.27), computed, table")


@functools.lru_cache(maxsize=16)
def _build(rows: tuple[tuple[int, int], ...], page_size: int) -> SizeClasses:
    return from_rows(rows, page_size)


def _check_page_size(page_size, where: str) -> None:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size & (page_size - 1) or not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
        raise PolicyError(f"{where} page_size: {page_size!r} is not a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}")


def _check_rows(rows, page_size: int, where: str) -> None:
    """Why a table cannot serve as the runtime's size classes, naming the first bad row."""
    if len(rows) + 1 > MAX_SIZE_CLASSES:
        raise PolicyError(f"{where}: {len(rows)} classes; at most {MAX_SIZE_CLASSES - 1} (plus class 0) are supported")
    prev = 0
    for i, (size, npages) in enumerate(rows, start=1):
        at = f"{where}: class {i} ({size} bytes/obj, {npages} pages/span)"
        if size <= prev:
            raise PolicyError(f"{at}: sizes must increase, and it is not larger than class {i - 1}'s {prev}")
        if size % 8:
            raise PolicyError(f"{at}: the size is not a multiple of 8 (the heap's word)")
        if size > MAX_SMALL_SIZE:
            raise PolicyError(f"{at}: larger than the small-object limit of {MAX_SMALL_SIZE} bytes")
        if size > SMALL_LOOKUP_LIMIT and size % LARGE_SIZE_DIV:
            raise PolicyError(f"{at}: sizes above {SMALL_LOOKUP_LIMIT} must be multiples of {LARGE_SIZE_DIV} (the size-to-class lookup's step)")
        if npages < 1:
            raise PolicyError(f"{at}: a span has at least one page")
        if npages * page_size < size:
            raise PolicyError(f"{at}: a span of {npages} x {page_size} bytes holds no object")
        prev = size


# ================================================================ pacer and scavenger


@dataclass(frozen=True)
class Pacer:
    """When collections start: GOGC (from HeapConfig.gcpercent, as always), plus these.

    min_heap: the heap goal's floor at GOGC=100, scaled by GOGC/100 (Go >= 1.5:
    4 MB x GOGC/100; it is also the first goal, where the seed's next_gc starts at 0).
    0: none (the seed). memory_limit: a soft limit on the runtime's memory in bytes
    (Go >= 1.19's GOMEMLIMIT); None: none. gomemlimit: when no memory_limit is given,
    read $GOMEMLIMIT, as Go >= 1.19 does (the seed's runtime never did).
    """

    min_heap: int = 0
    memory_limit: int | None = None
    gomemlimit: bool = False

    def __post_init__(self):
        if isinstance(self.min_heap, bool) or not isinstance(self.min_heap, int) or self.min_heap < 0:
            raise PolicyError(f"[pacer] min_heap: {self.min_heap!r} is not a byte count")
        if self.memory_limit is not None and (
            isinstance(self.memory_limit, bool) or not isinstance(self.memory_limit, int) or not 0 <= self.memory_limit <= INT64_MAX
        ):
            raise PolicyError(f"[pacer] memory_limit: {self.memory_limit!r} is not a byte count")

    def describe(self) -> str:
        parts = ["GOGC"]
        parts.append(f"minimum heap {format_bytes(self.min_heap)} x GOGC/100" if self.min_heap else "next_gc starts at 0")
        if self.memory_limit is not None:
            parts.append(f"memory limit {format_bytes(self.memory_limit)}")
        elif self.gomemlimit:
            parts.append("memory limit from $GOMEMLIMIT")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "min_heap": self.min_heap,
            "memory_limit": "off" if self.memory_limit is None else self.memory_limit,
            "gomemlimit": self.gomemlimit,
        }

    @classmethod
    def from_dict(cls, data, where: str = "pacer", base: Pacer | None = None) -> Pacer:
        converters = {"min_heap": parse_byte_count, "memory_limit": _off_or(parse_byte_count), "gomemlimit": _bool}
        return _part_from_dict(cls, data, where, "pacer", base or cls(), converters)


@dataclass(frozen=True)
class Scavenger:
    """When free spans go back to the OS, and when an idle program is collected anyway.

    force_gc_period_ns: a collection is forced when none ran for this long (the seed:
    2 minutes, as Go's sysmon still does). release_idle_after_ns: the seed's rule, spans
    idle this long are released (5 minutes); None: off. retain_extra_percent: Go 1.19's
    rule, after each collection and heap growth release free spans, highest address first,
    until the retained heap is at most the heap goal plus this percent and, with a memory
    limit, the runtime's memory at most 95% of it; None: off (the seed). The scavenger
    wakes every min(force_gc_period_ns, release_idle_after_ns) / 2.
    """

    force_gc_period_ns: int = FORCE_GC_PERIOD_NS
    release_idle_after_ns: int | None = SCAVENGE_LIMIT_NS
    retain_extra_percent: int | None = None

    def __post_init__(self):
        for key in ("force_gc_period_ns", "release_idle_after_ns", "retain_extra_percent"):
            value = getattr(self, key)
            if value is None and key != "force_gc_period_ns":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise PolicyError(f"[scavenger] {key}: {value!r} is not an integer")
        if self.force_gc_period_ns < 2 or (self.release_idle_after_ns is not None and self.release_idle_after_ns < 2):
            raise PolicyError("[scavenger] force_gc_period_ns and release_idle_after_ns must be at least 2 ns (the tick is half the smaller)")
        if self.retain_extra_percent is not None and self.retain_extra_percent < 0:
            raise PolicyError(f"[scavenger] retain_extra_percent: {self.retain_extra_percent} is negative")

    @property
    def tick_ns(self) -> int:
        """How often the scavenger wakes (the seed: min(2 min, 5 min) / 2 = 60 s)."""
        idle = self.release_idle_after_ns if self.release_idle_after_ns is not None else self.force_gc_period_ns
        return min(self.force_gc_period_ns, idle) // 2

    def describe(self) -> str:
        parts = []
        if self.release_idle_after_ns is not None:
            parts.append(f"releases spans idle {_format_ns(self.release_idle_after_ns)}")
        if self.retain_extra_percent is not None:
            parts.append(f"keeps the retained heap at the heap goal + {self.retain_extra_percent}%")
        if not parts:
            parts.append("releases nothing by itself")
        parts.append(f"forces a GC after {_format_ns(self.force_gc_period_ns)}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "force_gc_period_ns": self.force_gc_period_ns,
            "release_idle_after_ns": "off" if self.release_idle_after_ns is None else self.release_idle_after_ns,
            "retain_extra_percent": "off" if self.retain_extra_percent is None else self.retain_extra_percent,
        }

    @classmethod
    def from_dict(cls, data, where: str = "scavenger", base: Scavenger | None = None) -> Scavenger:
        converters = {"force_gc_period_ns": _int, "release_idle_after_ns": _off_or(_int), "retain_extra_percent": _off_or(_int)}
        return _part_from_dict(cls, data, where, "scavenger", base or cls(), converters)


# ================================================================ the policy




@dataclass(frozen=True)
class Policy:
    """A heap's policies: size classes and page size, pacer, scavenger. Frozen; ``HeapConfig(policy=)``.

    Build one from a preset or a file with :meth:`from_name` (``"modern"``,
    ``"mine.toml"``), from a dictionary with :meth:`from_dict`, or directly. A heap built
    with it stores the tables and values in its runtime state; :attr:`goheap.Heap.policy`
    is the policy a heap runs, with the memory limit and minimum heap it resolved.
    """

    name: str = "seed"
    size_classes: SizeClassTable = field(default_factory=SizeClassTable.seed)
    pacer: Pacer = field(default_factory=Pacer)
    scavenger: Scavenger = field(default_factory=Scavenger)
    description: str = field(default="", compare=False)

    __module__ = "goheap"

    @property
    def page_size(self) -> int:
        return self.size_classes.page_size

    @property
    def is_seed(self) -> bool:
        """Whether every number is the seed's (whatever the name): such a heap runs exactly as the 2013 runtime."""
        return (self.size_classes, self.pacer, self.scavenger) == (SEED.size_classes, SEED.pacer, SEED.scavenger)

    def replace(self, **changes) -> Policy:
        """A copy with some parts replaced; ``memory_limit=``, ``min_heap=`` and the Scavenger's
        fields may be given directly."""
        pacer = {k: changes.pop(k) for k in ("memory_limit", "min_heap", "gomemlimit") if k in changes}
        scavenger = {k: changes.pop(k) for k in ("force_gc_period_ns", "release_idle_after_ns", "retain_extra_percent") if k in changes}
        out = dataclasses.replace(self, **changes)
        if pacer:
            out = dataclasses.replace(out, pacer=dataclasses.replace(out.pacer, **pacer))
        if scavenger:
            out = dataclasses.replace(out, scavenger=dataclasses.replace(out.scavenger, **scavenger))
        return out

    def resolve(self, memory_limit: int | str | None = None, min_heap: int | str | None = None, environ=None) -> Policy:
        """The policy a heap runs: ``memory_limit`` and ``min_heap`` (byte counts, or "off" for
        no limit) override the pacer's; without either limit, $GOMEMLIMIT is read if the pacer
        reads it (as Go >= 1.19 does; "off" or unset: no limit). Raises PolicyError."""
        environ = os.environ if environ is None else environ
        pacer = self.pacer
        if min_heap is not None:
            try:
                pacer = dataclasses.replace(pacer, min_heap=parse_byte_count(min_heap))
            except ValueError as exc:
                raise PolicyError(f"min heap: {exc}") from None
        if memory_limit is not None:
            try:
                limit = None if memory_limit == "off" else parse_byte_count(memory_limit)
            except ValueError as exc:
                raise PolicyError(f"memory limit: {exc}") from None
            pacer = dataclasses.replace(pacer, memory_limit=limit)
        elif pacer.memory_limit is None and pacer.gomemlimit and environ.get("GOMEMLIMIT", "off") not in ("", "off"):
            text = environ["GOMEMLIMIT"]
            try:
                pacer = dataclasses.replace(pacer, memory_limit=parse_byte_count(text))
            except ValueError as exc:
                raise PolicyError(f"GOMEMLIMIT={text}: {exc}") from None
        return self if pacer == self.pacer else dataclasses.replace(self, pacer=pacer)

    def trace_line(self) -> str:
        """The line that opens a gctrace under this policy (none is printed under the seed's)."""
        return f"goheap policy {self.summary()}"

    def summary(self) -> str:
        """One line: the name, then what each part does."""
        return (
            f"{self.name}: size classes: {self.size_classes.describe()}; pacer: {self.pacer.describe()}; "
            f"scavenger: {self.scavenger.describe()}"
        )

    # ------------------------------------------------------------ as data

    def to_dict(self) -> dict:
        """A plain dictionary (JSON and TOML friendly): what :meth:`from_dict` and policy files read."""
        out: dict[str, object] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["size_classes"] = self.size_classes.to_dict()
        out["pacer"] = self.pacer.to_dict()
        out["scavenger"] = self.scavenger.to_dict()
        return out

    @classmethod
    def from_dict(cls, data, where: str = "policy", default_name: str = "custom") -> Policy:
        """A policy from a dictionary with a policy file's keys; missing parts come from ``based_on`` (default: seed)."""
        r = _Reader(data, where, "")
        name = r.take("name", _str, default_name)
        description = r.take("description", _str, "")
        based_on = r.take("based_on", _str, "seed")
        if based_on not in PRESETS:
            raise r.error("based_on", f"unknown preset {based_on!r} (known: {', '.join(PRESETS)})")
        base = PRESETS[based_on]
        size_classes = base.size_classes
        if "size_classes" in r.data:
            size_classes = SizeClassTable.from_dict(r.data.pop("size_classes"), where)
        pacer = Pacer.from_dict(r.data.pop("pacer"), where, base.pacer) if "pacer" in r.data else base.pacer
        scavenger = Scavenger.from_dict(r.data.pop("scavenger"), where, base.scavenger) if "scavenger" in r.data else base.scavenger
        r.done()
        return cls(name, size_classes, pacer, scavenger, description)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Policy:
        """A policy from a TOML file (see the module docstring); its name defaults to the file's stem."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise PolicyError(f"{path}: not a text file") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, str(path), default_name=path.stem)

    @classmethod
    def from_name(cls, name: str | os.PathLike | Policy) -> Policy:
        """A preset by name, or a policy file (a path ending in .toml); a Policy passes through."""
        if isinstance(name, Policy):
            return name
        text = os.fspath(name)
        if text in PRESETS:
            return PRESETS[text]
        if text.endswith(".toml"):
            return cls.load(text)
        raise PolicyError(f"unknown policy {text!r} (known: {', '.join(PRESETS)}; or a policy file, FILE.toml)")


SEED = Policy(
    "seed",
    description="the 2013 runtime as it was: msize.c's classes on 4 KB pages, next_gc from 0, spans released after 5 idle minutes",
)

PRESETS: dict[str, Policy] = {
    p.name: p
    for p in (
        SEED,
        Policy(
            "go1.27-classes",
            SizeClassTable.go("1.27"),
            description="Go 1.27's 68 size classes and 8 KB pages on the 2013 allocator; pacing and scavenging as the seed",
        ),
        Policy(
            "modern-pacer",
            pacer=Pacer(min_heap=GO_HEAP_MINIMUM, gomemlimit=True),
            description="the seed's classes; Go >= 1.5's 4 MB x GOGC/100 minimum heap and Go 1.19's memory limit ($GOMEMLIMIT)",
        ),
        Policy(
            "modern",
            SizeClassTable.go("1.27"),
            Pacer(min_heap=GO_HEAP_MINIMUM, gomemlimit=True),
            Scavenger(release_idle_after_ns=None, retain_extra_percent=GO_RETAIN_EXTRA_PERCENT),
            description="Go 1.27's classes and pages, the modern pacer, Go 1.19's scavenger (retained heap = heap goal + 10%)",
        ),
    )
}

SCOPE_NOTE = (
    "All policies run the 2013 stop-the-world mark-sweep collector: they change allocation and pacing "
    "policy, not the collector's concurrency (Go >= 1.5 marks while the program runs; goheap never does)."
)
