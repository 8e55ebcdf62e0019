"""How a heap is built: :class:`HeapConfig`, GOGC's parsing, and registered types.

See :mod:`goheap.heap` for the shell that uses them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TextIO

from .. import errors
from .._runtime import layout as L
from .._runtime.constants import MAX_MEM, MEM_PROFILE_RATE, TYPEINFO_SINGLE_OBJECT
from .._runtime.gctrace import GCTRACE_FORMATS
from .._runtime.goenv import readgogc
from .._runtime.mallocinit import Limits
from .._runtime.sysmem import OSBackend
from ..policy import Policy, PolicyError
from ..race import RaceOptions
from . import args

__all__ = ["HeapConfig", "TypeInfo", "readgogc"]



@dataclass(frozen=True)
class HeapConfig:
    """How to build a heap. Every default is the seed's.

    gcpercent / gctrace: None reads GOGC / GOGCTRACE from the environment, as the seed does
    (GODEBUG=gctrace=N, today's Go's setting, is read too when GOGCTRACE is not set).
    gctrace_format: the trace lines' format, "seed" (the default) or "modern" (today's
    Go's ``gc 1 @0.012s 2%: ...``; see :func:`goheap._runtime.gctrace.format_gctrace_modern`).
    nproc: collector procs (work.nproc), at most 8 (MaxGcproc) as the seed's gcprocs allows;
    with more than one, the procs' mark and sweep are interleaved deterministically (see
    ``goheap._runtime.gc.gchelper``) and gctrace shows their handoffs, steals and yields.
    virtual_clock: the runtime's clock is ``start_time_ns`` and moves only with
    :meth:`Heap.advance_clock` (deterministic pauses, scavenger and LastGC).
    policy: the size classes and page size, pacer and scavenger (:class:`goheap.Policy`,
    or a preset's name or a policy file's path; the seed's by default).
    memory_limit / min_heap: override the policy's pacer (byte counts or GOMEMLIMIT-style
    strings like "64MiB"; memory_limit "off" for none); None: the policy's (a policy that
    reads $GOMEMLIMIT reads it then).
    force_gc_period_ns / scavenge_limit_ns: override the policy's scavenger (the seed's:
    2 and 5 minutes; it wakes every min(both)/2); None: the policy's. scavenger_thread:
    run it on a daemon thread in real time (off by default; a collection can then happen
    between any two heap calls).
    go_process: the runtime allocates its own blocks as a Go process's does: each
    collection runs on a heap-allocated stack segment, and the first one allocates its
    ParFor descriptors (see :mod:`goheap.workloads.goprocess` for the rest of a process).
    race: race mode (``go run -race``): shadow memory for the heap and data-race reports
    (:mod:`goheap.race`); race_options: GORACE's options, None reads the GORACE variable.
    """

    arena_size: int = MAX_MEM
    gcpercent: int | None = None
    gctrace: int | None = None
    gctrace_format: str = "seed"
    trace_stream: TextIO | None = None
    memprofilerate: int = MEM_PROFILE_RATE
    nproc: int = 1
    virtual_clock: bool = False
    start_time_ns: int = 0
    policy: Policy | str = "seed"
    memory_limit: int | str | None = None
    min_heap: int | str | None = None
    force_gc_period_ns: int | None = None
    scavenge_limit_ns: int | None = None
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


def check_config(config: HeapConfig) -> Policy:
    """Every field holds a value goheap can honour (else ConfigError naming the field); return the policy the heap will run."""
    if not isinstance(config, HeapConfig):
        raise errors.ConfigError(f"a heap is built from a HeapConfig, not {type(config).__name__}")

    def number(name, lo, hi, none_ok=False):
        value = getattr(config, name)
        if not (none_ok and value is None):
            args.integer(value, f"HeapConfig.{name}", lo, hi, errors.ConfigError)

    number("gcpercent", args.INT32_MIN, args.INT32_MAX, none_ok=True)  # the seed's int32 gcpercent
    number("gctrace", args.INT32_MIN, args.INT32_MAX, none_ok=True)
    number("memprofilerate", args.INT64_MIN, args.INT64_MAX)
    number("nproc", 1, args.INT64_MAX)
    number("start_time_ns", 0, args.INT64_MAX)
    # the tick is half the smaller of the two
    number("force_gc_period_ns", 2, args.INT64_MAX, none_ok=True)
    number("scavenge_limit_ns", 2, args.INT64_MAX, none_ok=True)
    for name, kind in (("os", OSBackend), ("race_options", RaceOptions)):
        if getattr(config, name) is not None and not isinstance(getattr(config, name), kind):
            raise errors.ConfigError(f"HeapConfig.{name} must be a {kind.__name__} or None, not {getattr(config, name)!r}")
    if not isinstance(config.limits, Limits):
        raise errors.ConfigError(f"HeapConfig.limits must be a goheap.Limits, not {config.limits!r}")
    if config.trace_stream is not None and not callable(getattr(config.trace_stream, "write", None)):
        raise errors.ConfigError(f"HeapConfig.trace_stream must have a write method, not {config.trace_stream!r}")
    if config.gctrace_format not in GCTRACE_FORMATS:
        raise errors.ConfigError(f"gctrace_format must be one of {', '.join(GCTRACE_FORMATS)}, not {config.gctrace_format!r}")
    if config.scavenger_thread and config.virtual_clock:
        raise errors.ConfigError("scavenger_thread runs in real time; it cannot drive a virtual clock")
    if not isinstance(config.policy, (Policy, str, os.PathLike)):
        raise PolicyError(f"policy must be a goheap.Policy, a preset's name or a policy file, not {config.policy!r}")
    policy = Policy.from_name(config.policy).resolve(config.memory_limit, config.min_heap)
    ages = {}
    if config.force_gc_period_ns is not None:
        ages["force_gc_period_ns"] = config.force_gc_period_ns
    if config.scavenge_limit_ns is not None:
        ages["release_idle_after_ns"] = config.scavenge_limit_ns
    return policy.replace(**ages) if ages else policy


def build_config(config, overrides: dict) -> tuple[HeapConfig, Policy]:
    """Heap(config, **overrides)'s config, ``config`` (or the defaults) with the overrides
    applied, and the policy it runs (each checked by :func:`check_config`)."""
    config = HeapConfig() if config is None else config
    policy = check_config(config)
    if overrides:
        unknown = sorted(set(overrides) - set(config.__dataclass_fields__))
        if unknown:
            raise errors.ConfigError(f"HeapConfig has no field {', '.join(unknown)}")
        config = HeapConfig(**{**config.__dict__, **overrides})
        policy = check_config(config)
    return config, policy
