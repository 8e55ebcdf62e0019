"""Regenerate docs/sweep.png, the README's picture of a sweep's comparison report.

Made the way the README's "Sweeps" section says: the shared Go 1.27 execution trace of
binary-trees (../shared/data/go1.27-traces, imported with ``goheap trace import``) swept
over four GOGC values, two policies (seed, modern) and both replay modes with
``goheap sweep ... --report``, on a local Dask cluster; then headless Chromium renders the
report (goheap.report.browser), and the picture is the top of the page: the summary, the
heap over time of the sixteen runs and the Pareto plots.

    .venv/bin/python docs/make_sweep_png.py [OUT.png]
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

from goheap.cli import main
from goheap.report import browser

WIDTH, HEIGHT = 1200, 1700
LOG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "go1.27-traces" / "binarytrees-12.trace.gz"


def make_sweep_png(out: Path) -> None:
    out = out.resolve()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the report names its results directory as the command line did
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                main(["trace", "import", str(LOG), "-o", "bt12.trace.npz"], standalone_mode=False)
                main(["sweep", "--trace", "bt12.trace.npz", "--gogc", "25,50,100,200", "--policy", "seed,modern",
                      "--mode", "gc,free", "-o", "bt12-sweep", "--report", "bt12-sweep.html"], standalone_mode=False)  # fmt: skip
            print(browser.save_screenshot("bt12-sweep.html", out, width=WIDTH, height=HEIGHT))
        finally:
            os.chdir(here)


if __name__ == "__main__":
    make_sweep_png(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("sweep.png"))
