"""The ``goheap`` command line. ``goheap --help`` lists the commands."""

from __future__ import annotations

import sys

import click

from ._runtime.sizeclasses import init_sizes
from .trace.cli import replay_command, trace_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="goheap")
def main() -> None:
    """The Go runtime's 2013 allocator and garbage collector, runnable."""


@main.command()
def sizeclasses() -> None:
    """Print the 61 size classes as msize.c computes them."""
    out = ["class  bytes/obj  pages  bytes/span  objects  tail waste  transfer"]
    for c, size, npages, span, objs, waste, transfer in init_sizes().rows():
        out.append(f"{c:5d}  {size:9d}  {npages:5d}  {span:10d}  {objs:7d}  {waste:10d}  {transfer:8d}")
    click.echo("\n".join(out))


main.add_command(trace_group)
main.add_command(replay_command)


if __name__ == "__main__":
    sys.exit(main())
