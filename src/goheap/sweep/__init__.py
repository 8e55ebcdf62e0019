"""Sweeps: grids of runs (GOGC, replay mode, policy, memory limit ... over workloads and traces), on Dask, compared.

One run answers one question; tuning GOGC, or judging a policy, takes a grid: the same
trace or workload under many settings, side by side. ``goheap sweep`` runs one::

    goheap sweep --trace bt10.trace.npz --gogc 25,50,100,200 --policy seed,modern --mode gc,free -o bt10-sweep --report bt10.html

The pieces, in the order a sweep uses them:

* :mod:`goheap.sweep.spec`: what to run. A TOML file or flags become a checked
  :class:`SweepSpec` (sources, and the values of each axis of :data:`AXES`), which expands
  to one :class:`RunParams` per run, each with a stable id.
* :mod:`goheap.sweep.run`: :func:`run_one`, the one run function (one keyword per axis),
  and the figures it keeps (:data:`~goheap.sweep.run.FIGURES`); :func:`execute` records
  a failure instead of raising it.
* :mod:`goheap.sweep.cluster`: where runs execute: in this process, or on Dask
  distributed (a LocalCluster of one single-threaded worker process per core, or an
  existing cluster by address).
* :mod:`goheap.sweep.results`: the results directory, streamed to as runs finish: a
  Parquet and a CSV table, a JSON file per run; read back by ``--resume``.
* :mod:`goheap.sweep.driver`: :func:`run_sweep` ties them together (progress, Ctrl-C).
* :mod:`goheap.report.comparison`: the comparison report (one HTML file), and
  :mod:`goheap.sweep.diff`: two runs side by side (``goheap diff``).
"""

from __future__ import annotations

import importlib

# Names are imported on first use, so that the command line can load its options without
# loading the runtime (``goheap sweep --help``).
_EXPORTS = {
    "AXES": "spec",
    "ResultsDir": "results",
    "RunParams": "spec",
    "RunRecord": "run",
    "Source": "spec",
    "SweepOutcome": "driver",
    "SweepSpec": "spec",
    "SweepSpecError": "spec",
    "build_spec": "spec",
    "execute": "run",
    "load_spec": "spec",
    "run_one": "run",
    "run_sweep": "driver",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
