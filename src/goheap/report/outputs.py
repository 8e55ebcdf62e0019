"""The optional outputs of a run or a replay: an HTML report and a heap profile.

``goheap run`` and ``goheap replay`` share them: :func:`output_options` adds the command
line options (``--report``, ``--heap-profile``, ``--memprofilerate``), :class:`RunOutputs`
samples the heap while it runs and writes the files when it is done.
"""

from __future__ import annotations

import click

from ..atomicfile import PendingFiles

__all__ = ["RunOutputs", "output_options"]


def output_options(fn):
    """Add --memprofilerate, --heap-profile and --report to a click command."""
    fn = click.option(
        "--report", "report", type=click.Path(dir_okay=False), metavar="FILE.html",
        help="Write an HTML report of the run (heap over time, GC pauses, size classes, span map, MemStats).",
    )(fn)  # fmt: skip
    fn = click.option(
        "--heap-profile", "heap_profile", type=click.Path(dir_okay=False), metavar="PATH",
        help="Write the heap profile at exit to PATH (pprof's gzipped profile.proto: go tool pprof -top PATH).",
    )(fn)  # fmt: skip
    fn = click.option(
        "--memprofilerate", type=click.IntRange(min=0), default=None, metavar="N",
        help="runtime.MemProfileRate: sample an allocation every N bytes on average (default 524288; 0 off, 1 all).",
    )(fn)  # fmt: skip
    return fn


class RunOutputs:
    """Samples a heap for a report (``on_tick``), writes the profile at the end (``on_exit``), then the report.

    Both are written to temporary names of ``pending`` (a :class:`goheap.atomicfile.PendingFiles`
    the command commits once everything is written), so an interrupted or failed command
    leaves neither behind. The paths are checked beforehand (``goheap.command.check_outputs``).
    """

    def __init__(self, report: str | None, heap_profile: str | None, pending: PendingFiles):
        self.report = report
        self.heap_profile = heap_profile
        self.pending = pending
        self.history = None
        if report:
            from ..inspect import History  # only now: it loads the compiled runtime

            self.history = History()

    @property
    def on_tick(self):
        return self.history

    def on_exit(self, heap) -> None:
        if self.history is not None:
            self.history.finish(heap)
        if self.heap_profile:
            with self.pending.writing(self.heap_profile) as path:
                heap.write_heap_profile(path)

    def write_report(self, *, title: str, subtitle: str, run_info: dict[str, str], sections=None) -> None:
        if self.history is None:
            return
        assert self.report is not None  # a history is kept only for a report
        from .html import write_report

        with self.pending.writing(self.report) as path:
            write_report(path, self.history, title=title, subtitle=subtitle, run_info=run_info, sections=sections)
