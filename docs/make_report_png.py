"""Regenerate docs/report.png, the README's picture of a report.

The picture is made the way the report's test makes and checks one
(tests/report/test_html.py): ``goheap run ... --report`` writes the report, then headless
Chromium renders it (goheap.report.browser). Here the run is the README's own command,
binary-trees of depth 16, and the picture is the top of the page: the summary, the heap
over time and the GC pauses.

    .venv/bin/python docs/make_report_png.py [OUT.png]
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

from goheap.cli import main
from goheap.report import browser

WIDTH, HEIGHT = 1200, 1640


def make_report_png(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        with contextlib.redirect_stdout(io.StringIO()):
            main(["run", "--report", str(report), "binarytrees", "16"], standalone_mode=False)
        print(browser.save_screenshot(report, out, width=WIDTH, height=HEIGHT))


if __name__ == "__main__":
    make_report_png(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("report.png"))
