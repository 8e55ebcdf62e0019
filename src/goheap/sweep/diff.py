"""``goheap diff A B``: two runs side by side, field by field.

A and B are each one of:

* the output of ``goheap run ... --json`` or ``goheap replay ... --json`` saved to a file;
* a sweep run's record, ``DIR/runs/RUN_ID.json``;
* a row of a sweep, ``DIR:RUN`` where RUN is the run's id (or a prefix of it) or its row
  number in ``DIR/results.csv`` (1 is the first row).

Each becomes a :class:`RunView`: its parameters (workload and arguments, or trace, mode,
GOGC, the policy with its memory limit and minimum heap, ...), its figures (NumGC, pauses, peaks, ...) and its final MemStats; :func:`diff`
lines up what both have. Anything else is a :class:`DiffInputError` naming the input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HeapError

__all__ = ["DiffInputError", "RunView", "diff", "load_run_view"]

_NOT_FIGURES = {"status", "error", "worker"}


class DiffInputError(HeapError, ValueError):
    """An input of ``goheap diff`` that is not a run: the message names it and why."""

    __module__ = "goheap.sweep"


@dataclass
class RunView:
    """One run, reduced to what can be compared."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    memstats: dict[str, int | float] = field(default_factory=dict)


def _scalars(memstats: dict[str, Any]) -> dict[str, int | float]:
    return {k: v for k, v in memstats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _policy_params(policy: dict[str, Any] | None) -> dict[str, Any]:
    """The policy a run's heap ran (Policy.to_dict), as parameters: its name and its pacer's limits, as the grid writes them."""
    if not policy:
        return {}
    from .spec import show_bytes

    pacer = policy.get("pacer", {})
    limit, min_heap = pacer.get("memory_limit"), pacer.get("min_heap")
    return {
        "policy": policy.get("name"),
        "memory_limit": show_bytes(limit) if isinstance(limit, int) else limit,
        "min_heap": show_bytes(min_heap) if isinstance(min_heap, int) else min_heap,
    }


def _from_sweep_record(name: str, data: dict[str, Any]) -> RunView:
    p = data["params"]
    source = p["source"]
    settings = {k: v for k, v in p["settings"].items() if k not in ("memory_limit", "min_heap")}  # the heap's own, below
    params = {"source": " ".join([source["name"], *source["args"]]), **settings, **_policy_params(data.get("policy")),
              "clock": p["clock"]}  # fmt: skip
    row = data.get("row", {})
    if row.get("status") != "ok":
        raise DiffInputError(f"{name}: the run failed ({row.get('error')}); it has no figures")
    figures = {k: v for k, v in row.items() if k not in _NOT_FIGURES and not k.startswith("memstats.") and v is not None}
    return RunView(name, params, figures, _scalars(data.get("memstats", {})))


def _from_run_json(name: str, data: dict[str, Any]) -> RunView:
    ms = _scalars(data["memstats"])
    params = {"workload": data["workload"], "args": " ".join(data.get("args", []))}
    if isinstance(data.get("gogc"), dict):
        params["gogc"] = data["gogc"].get("value")
    params.update(_policy_params(data.get("policy")), clock="real")  # as goheap run runs
    figures = {"num_gc": ms.get("NumGC"), "pause_total_ns": ms.get("PauseTotalNs"), "total_alloc": ms.get("TotalAlloc"),
               "mallocs": ms.get("Mallocs")}  # fmt: skip
    if "elapsed_s" in data:
        figures["wall_s"] = data["elapsed_s"]
    return RunView(name, params, {k: v for k, v in figures.items() if v is not None}, ms)


def _from_replay_json(name: str, data: dict[str, Any]) -> RunView:
    ms = _scalars(data["memstats"])
    cmp = data.get("comparison", {})
    params = {"source": data["trace"].get("source"), "mode": data.get("mode"), "gogc": data.get("gogc"),
              **_policy_params(data.get("policy")), "clock": "virtual"}  # goheap replay's heap runs on a virtual clock  # fmt: skip
    figures = {
        "num_gc": ms.get("NumGC"),
        "pause_total_ns": ms.get("PauseTotalNs"),
        "peak_heap_alloc": cmp.get("peak_bytes", {}).get("goheap"),
        "total_alloc": ms.get("TotalAlloc"),
        "mallocs": ms.get("Mallocs"),
        "events": data["trace"].get("events"),
        "recorded_num_gc": cmp.get("num_gc", {}).get("recorded"),
        "recorded_peak_bytes": cmp.get("peak_bytes", {}).get("recorded"),
    }
    return RunView(name, params, {k: v for k, v in figures.items() if v is not None}, ms)


def _view(name: str, data: Any) -> RunView:
    if not isinstance(data, dict) or "memstats" not in data and "params" not in data:
        raise DiffInputError(f"{name}: not a goheap run (the JSON of goheap run/replay --json, or a sweep's run)")
    try:
        if "params" in data and "row" in data:
            return _from_sweep_record(name, data)
        if "workload" in data:
            return _from_run_json(name, data)
        if "trace" in data:
            return _from_replay_json(name, data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DiffInputError(f"{name}: a goheap run's JSON without the expected field {exc}") from None
    raise DiffInputError(f"{name}: not a goheap run (the JSON of goheap run/replay --json, or a sweep's run)")


def _sweep_row(directory: Path, key: str, name: str) -> dict[str, Any]:
    from .results import ResultsDir, row_order, table_row

    results = ResultsDir(directory)
    if not results.holds_a_sweep():
        raise DiffInputError(f"{name}: {directory} holds no sweep (no sweep.json)")
    records = sorted(results.records(), key=lambda r: row_order(table_row(r)))
    by_id = [r for r in records if r["run_id"].startswith(key)] if len(key) >= 3 else []
    row = int(key) if key.isdigit() and 1 <= int(key) <= len(records) else None
    if row is not None and by_id:
        raise DiffInputError(f"{name}: both row {row} and the run {by_id[0]['run_id']} of {directory}; give more of the id")
    if row is not None:
        return records[row - 1]
    if len(by_id) == 1:
        return by_id[0]
    if by_id:
        raise DiffInputError(f"{name}: {len(by_id)} runs of {directory} have ids starting with {key!r}; give more of it")
    if key.isdigit() and len(key) < 3:
        raise DiffInputError(f"{name}: the sweep has {len(records)} runs; there is no row {key}")
    raise DiffInputError(f"{name}: no run of {directory} has an id starting with {key!r}, nor is it a row (see its results.csv)")


def load_run_view(spec: str) -> RunView:
    """The run that ``spec`` names (see the module docstring)."""
    path = Path(spec)
    if not path.exists() and ":" in spec:
        directory, key = spec.rsplit(":", 1)
        if Path(directory).is_dir():
            return _view(spec, _sweep_row(Path(directory), key, spec))
    if path.is_dir():
        raise DiffInputError(f"{spec}: a directory; name one run of a sweep as {spec}:RUN_ID or {spec}:ROW")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DiffInputError(f"{spec}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DiffInputError(f"{spec}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DiffInputError(f"{spec}: not JSON ({exc})") from None
    return _view(spec, data)


def diff(a: RunView, b: RunView) -> dict[str, Any]:
    """Parameters, figures and MemStats of both runs, field by field (those both have; params: all).

    Each figure and MemStats field is ``{"a": x, "b": y, "diff": y - x, "ratio": y / x}``
    (ratio None where x is 0).
    """

    def pairs(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k in x:
            if k in y and isinstance(x[k], (int, float)) and isinstance(y[k], (int, float)):
                out[k] = {"a": x[k], "b": y[k], "diff": y[k] - x[k], "ratio": (y[k] / x[k]) if x[k] else None}
        return out

    keys = list(a.params) + [k for k in b.params if k not in a.params]
    return {
        "a": a.name,
        "b": b.name,
        "params": {k: {"a": a.params.get(k), "b": b.params.get(k)} for k in keys},
        "figures": pairs(a.figures, b.figures),
        "memstats": pairs(a.memstats, b.memstats),
    }
