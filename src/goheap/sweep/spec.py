"""What a sweep runs: its sources, its grid, and the runs they expand to.

A sweep is described by a TOML file (``goheap sweep SPEC.toml``) or by command-line flags
for the simple case; both become a :class:`SweepSpec`, checked as a whole before any run
starts (:func:`load_spec`, :func:`build_spec`)::

    traces = ["bt10.trace.npz"]                 # trace files (goheap trace import), relative to this file
    workloads = ["binarytrees 12", "gcbench"]   # built-in workloads with their arguments
    clock = "real"                              # or "virtual"

    [grid]
    gogc = [25, 50, 100, 200, "off"]
    mode = ["gc", "free"]                       # traces only: how a recorded free is replayed
    policy = ["seed", "modern", "mine.toml"]    # presets or policy files (relative to this file)
    memory_limit = ["off", "64MiB"]             # the pacer's soft limit (GOMEMLIMIT's syntax)
    min_heap = ["4MiB"]                         # the pacer's minimum heap at GOGC=100

Each key of ``[grid]`` is an *axis* (:data:`AXES`): a keyword of the one run function
(:func:`goheap.sweep.run.run_one`) with the list of values to try. An axis left out takes
its default (one value): GOGC 100, mode gc, the seed's policy, and the policy's own
memory limit and minimum heap. A policy is read and checked by :mod:`goheap.policy`
(a preset's name, a policy file, or an inline table with a policy file's keys); a policy
file's contents, not its name, enter the ids of its runs. A sweep never reads
$GOMEMLIMIT: a worker's environment must not change a run, so a limit is an axis value
(or in a policy file). :meth:`SweepSpec.runs` is the Cartesian product of every source
with every axis that applies to it (``mode`` applies to traces only: a workload frees
nothing itself), one :class:`RunParams` per run, each with a stable id (a digest of its
parameters and, for a trace, of the trace file's contents), so that a sweep can be
resumed and a grid extended without running anything twice.

Every mistake raises :class:`SweepSpecError` naming the file, the key and the value.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HeapError
from ..policy import SEED, Policy, PolicyError, format_bytes, parse_byte_count

__all__ = [
    "AXES",
    "CLOCKS",
    "Axis",
    "RunParams",
    "Source",
    "SweepSpec",
    "SweepSpecError",
    "build_spec",
    "load_spec",
    "parse_gogc",
]

#: The clocks a run can use: "real" measures pauses on this machine's clock; "virtual"
#: stops time (pauses take no time), so that every figure of a run is reproducible.
CLOCKS = ("real", "virtual")
_MODES = ("gc", "free")
_TOP_KEYS = ("traces", "workloads", "clock", "grid")
COMMAND_LINE = "the command line"


class SweepSpecError(HeapError, ValueError):
    """A sweep description goheap cannot run: the message names the file, key and value."""

    __module__ = "goheap.sweep"


def parse_gogc(value: object) -> int:
    """A GOGC value of a grid, as ``--gogc`` takes it (:func:`goheap.command.parse_gogc_flag`):
    an integer N >= 0 (a TOML integer or a string), or ``"off"`` (-1). Raises ValueError."""
    from ..command import parse_gogc_flag

    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"GOGC must be a percentage N >= 0 or 'off', not {value!r}")
    return parse_gogc_flag(str(value))


def _parse_mode(value: object) -> str:
    if value not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, not {value!r}")
    return str(value)


def _show_gogc(v: int) -> str:
    return "off" if v < 0 else str(v)


def parse_policy(value: object, base: Path | None = None) -> Policy:
    """A policy of a grid: a preset's name, a policy file (``*.toml``, relative to ``base``),
    or a table with a policy file's keys. Raises :class:`goheap.PolicyError` (a ValueError)."""
    if isinstance(value, dict):
        return Policy.from_dict(value, "policy table", default_name="custom")
    if not isinstance(value, str) or not value:
        raise PolicyError(f"a policy is a preset's name, a policy file or a table, not {value!r}")
    if value.endswith(".toml") and base is not None:
        value = str(base / Path(value).expanduser())
    return Policy.from_name(value)


def _policy_spec_form(policy: Policy) -> dict[str, Any]:
    """The policy as parse_policy reads it back: its name and numbers (a description changes no run)."""
    data = policy.to_dict()
    data.pop("description", None)
    return data


def parse_memory_limit(value: object) -> int:
    """A memory limit of a grid: a byte count as GOMEMLIMIT writes it (64MiB), or ``"off"`` (-1). Raises ValueError."""
    return -1 if value == "off" else parse_byte_count(value)


def show_bytes(v: int) -> str:
    """A byte count of the grid as GOMEMLIMIT writes it (64MiB), ``off`` for -1: what the parse functions read back."""
    return "off" if v < 0 else format_bytes(v).replace(" ", "")


@dataclass(frozen=True)
class Axis:
    """One axis of a grid: its key, how a value is read and shown, its default, where it applies.

    ``name`` is the run function's keyword the value is passed as. ``parse(item, base)``
    reads a value of the TOML file or the command line (files relative to ``base``);
    ``column(value)`` is the value in the results table and the runs' records, and
    ``show(column)`` its text; ``spec_form(value)`` is what ``parse`` reads back, and what
    enters a run's id (default: the text). ``traces_only`` axes are left out of a
    workload's runs; ``quiet_default`` axes are left out of a run's label at their default.
    """

    name: str
    parse: Callable[[object, Path | None], Any]
    show: Callable[[Any], str]
    default: Any
    help: str
    traces_only: bool = False
    column: Callable[[Any], Any] = lambda value: value
    spec_form: Callable[[Any], Any] | None = None
    quiet_default: bool = False

    def form(self, value: Any) -> Any:
        """``value`` as parse reads it back (None for an axis at its default of "the policy's")."""
        if value is None:
            return None
        return self.spec_form(value) if self.spec_form is not None else self.show(self.column(value))

    def text(self, value: Any) -> str:
        """``value`` as text; an axis at its default of "the policy's" (None) says so."""
        return "policy's" if value is None else self.show(self.column(value))


#: Every axis a grid can have, in the order of the results table's columns.
AXES: dict[str, Axis] = {
    a.name: a
    for a in (
        Axis("gogc", lambda v, _base: parse_gogc(v), _show_gogc, 100, "GC percent: integers >= 0 or 'off'"),
        Axis("mode", lambda v, _base: _parse_mode(v), str, "gc", "how a recorded free is replayed: gc (the collector frees it) or free",
             traces_only=True),
        Axis("policy", parse_policy, str, SEED, "a preset (goheap policies), a policy file (FILE.toml) or a table",
             column=lambda p: p.name, spec_form=_policy_spec_form, quiet_default=True),
        Axis("memory_limit", lambda v, _base: parse_memory_limit(v), show_bytes, None,
             "the pacer's soft memory limit: a byte count (64MiB) or 'off'; default: the policy's", quiet_default=True),
        Axis("min_heap", lambda v, _base: parse_byte_count(v), show_bytes, None,
             "the pacer's minimum heap at GOGC=100 (4MiB; 0: none); default: the policy's", quiet_default=True),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """What one run executes: a built-in workload with its arguments, or an imported trace.

    For a trace, ``path`` is the file (absolute) and ``digest`` the SHA-256 of its contents.
    """

    kind: str  # "workload" or "trace"
    name: str  # the workload's name, or the trace file's name
    args: tuple[str, ...] = ()
    path: str | None = None
    digest: str | None = None

    @property
    def label(self) -> str:
        return " ".join([self.name, *self.args])

    def identity(self) -> dict[str, Any]:
        """What makes two sources the same for a resumed sweep (a trace by its contents)."""
        if self.kind == "trace":
            return {"trace": self.digest}
        return {"workload": self.name, "args": list(self.args)}


@dataclass(frozen=True)
class RunParams:
    """One run of a sweep: a source and one value per axis that applies to it, and the clock."""

    source: Source
    settings: tuple[tuple[str, Any], ...]  # (axis name, value), in AXES order
    clock: str = "real"

    @property
    def run_id(self) -> str:
        """A stable 12-hex-digit id: the same parameters (and trace contents) give the same id."""
        settings = {k: AXES[k].form(v) for k, v in self.settings}
        key = json.dumps({"source": self.source.identity(), "settings": settings, "clock": self.clock}, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        shown = [(k, v) for k, v in self.settings if not (AXES[k].quiet_default and v == AXES[k].default)]
        return " ".join([self.source.label] + [f"{k}={AXES[k].text(v)}" for k, v in shown])

    def setting(self, name: str) -> Any:
        return dict(self.settings).get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": {"kind": self.source.kind, "name": self.source.name, "args": list(self.source.args),
                       "path": self.source.path, "digest": self.source.digest},
            "settings": {k: AXES[k].column(v) if v is not None else None for k, v in self.settings},
            "clock": self.clock,
        }  # fmt: skip


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep: sources, the values of each axis, the clock."""

    sources: tuple[Source, ...]
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    clock: str = "real"
    #: each trace source's Trace, loaded once when the spec was checked (by digest)
    traces: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def axis_values(self, name: str) -> tuple[Any, ...]:
        return tuple(self.grid.get(name, (AXES[name].default,)))

    def runs(self) -> list[RunParams]:
        """Every run: each source with every combination of the values of the axes that apply to it."""
        out: list[RunParams] = []
        for source in self.sources:
            axes = [a for a in AXES.values() if not (a.traces_only and source.kind != "trace")]
            combos: list[tuple[tuple[str, Any], ...]] = [()]
            for axis in axes:
                combos = [c + ((axis.name, v),) for c in combos for v in self.axis_values(axis.name)]
            out.extend(RunParams(source, c, self.clock) for c in combos)
        seen: set[str] = set()
        unique = []
        for r in out:  # a source listed twice runs once
            if r.run_id not in seen:
                seen.add(r.run_id)
                unique.append(r)
        return unique

    def varying_axes(self) -> list[str]:
        """The axes with more than one value."""
        return [name for name in AXES if len(self.axis_values(name)) > 1]


# ---------------------------------------------------------------- reading and checking


def load_spec(path: str | os.PathLike[str], **overrides: Any) -> SweepSpec:
    """Read and check the TOML sweep file at ``path``; keyword overrides replace its keys
    (``traces``, ``workloads``, ``clock``, or an axis name).

    Trace paths are relative to the file's directory. Raises :class:`SweepSpecError`.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SweepSpecError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SweepSpecError(f"{path}: is a directory, not a sweep file") from None
    except OSError as exc:
        raise SweepSpecError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepSpecError(f"{path}: not valid TOML: {exc}") from None
    return _check(data, where=str(path), base=path.parent, overrides=overrides)


def build_spec(
    *,
    traces: Sequence[str] = (),
    workloads: Sequence[str] = (),
    clock: str | None = None,
    base: str | os.PathLike[str] = ".",
    **axes: Sequence[object] | None,
) -> SweepSpec:
    """A sweep from values given directly (the command line's flags); trace paths relative to ``base``."""
    data: dict[str, Any] = {"traces": list(traces), "workloads": list(workloads)}
    if clock is not None:
        data["clock"] = clock
    data["grid"] = {k: list(v) for k, v in axes.items() if v is not None}
    return _check(data, where=COMMAND_LINE, base=Path(base), overrides={})


def _check(data: dict[str, Any], *, where: str, base: Path, overrides: Mapping[str, Any]) -> SweepSpec:
    def fail(message: str) -> SweepSpecError:
        return SweepSpecError(f"{where}: {message}")

    def axis_key(name: str) -> str:
        return f"--{name.replace('_', '-')}" if where == COMMAND_LINE else f"grid.{name}"

    for key in data:
        if key not in _TOP_KEYS:
            hint = " (an axis goes under [grid])" if key in AXES else ""
            raise fail(f"unknown key {key!r}{hint}; known keys: {', '.join(_TOP_KEYS)}")
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise fail(f"'grid' must be a table of axes, not {grid!r}")
    for key in grid:
        if key not in AXES:
            raise fail(f"unknown axis grid.{key}; known axes: {', '.join(AXES)}")
    data = {**data, "grid": dict(grid)}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in AXES:
            data["grid"][key] = value
        elif key in _TOP_KEYS:
            data[key] = value
        else:  # pragma: no cover - the command line passes only known keys
            raise fail(f"unknown key {key!r}")

    clock = data.get("clock", "real")
    if clock not in CLOCKS:
        raise fail(f"clock must be one of {', '.join(CLOCKS)}, not {clock!r}")

    values: dict[str, tuple[Any, ...]] = {}
    for name, raw in data["grid"].items():
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise fail(f"axis {axis_key(name)} is empty: give it at least one value")
        parsed = []
        for item in items:
            try:
                v = AXES[name].parse(item, base)
            except ValueError as exc:
                raise fail(f"{axis_key(name)}: {exc}") from None
            if v not in parsed:
                parsed.append(v)
        values[name] = tuple(parsed)

    traces: dict[str, Any] = {}
    sources = [*_workloads(data.get("workloads", []), fail), *_traces(data.get("traces", []), base, fail, traces)]
    if not sources:
        raise fail("nothing to run: give at least one trace (traces = [...], --trace) or workload (workloads = [...], --workload)")
    if all(s.kind == "workload" for s in sources):
        for name in values:
            if AXES[name].traces_only:
                raise fail(f"axis {axis_key(name)} applies to traces only, and this sweep has none")
    return SweepSpec(tuple(sources), values, clock, traces)


def _as_list(value: object, key: str, fail) -> list:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise fail(f"{key!r} must be a list, not {value!r}")
    return value


def _workloads(value: object, fail) -> Iterable[Source]:
    from ..workloads import WORKLOADS

    for item in _as_list(value, "workloads", fail):
        if isinstance(item, dict):
            unknown = set(item) - {"name", "args"}
            if unknown or "name" not in item:
                raise fail(f"a workload table has the keys name and args, not {sorted(item)}")
            words = [str(item["name"]), *(str(a) for a in _as_list(item.get("args", []), "args", fail))]
        elif isinstance(item, str):
            try:
                words = shlex.split(item)
            except ValueError as exc:
                raise fail(f"workload {item!r}: {exc}") from None
        else:
            raise fail(f"a workload is a string like 'binarytrees 12', not {item!r}")
        if not words:
            raise fail("an empty workload")
        name, args = words[0], words[1:]
        workload = WORKLOADS.get(name)
        if workload is None:
            raise fail(f"unknown workload {name!r} (known: {', '.join(sorted(WORKLOADS))})")
        try:
            workload.parse_args(list(args))
        except ValueError as exc:
            raise fail(f"workload {' '.join(words)!r}: {exc}") from None
        yield Source("workload", name, tuple(args))


def _traces(value: object, base: Path, fail, loaded: dict[str, Any]) -> Iterable[Source]:
    from ..trace.tracefile import TraceFormatError, Trace

    for item in _as_list(value, "traces", fail):
        if not isinstance(item, str) or not item:
            raise fail(f"a trace is a file name, not {item!r}")
        path = (base / item).expanduser()
        if not path.is_file():
            why = "is a directory" if path.is_dir() else "no such file"
            shown = item if str(path) == item else f"{item} ({path})"
            raise fail(f"trace {shown}: {why}")
        digest = _digest(path)
        try:
            if digest not in loaded:
                loaded[digest] = Trace.load(path)  # a malformed file is refused now, not in every run
        except TraceFormatError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(f"trace {item}: cannot read {path}: {exc.strerror}") from None
        yield Source("trace", path.name, (), str(path.resolve()), digest)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
