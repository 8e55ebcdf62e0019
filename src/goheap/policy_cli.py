"""The command line's policy options, shared by ``goheap run``, ``goheap replay`` and ``goheap sizeclasses``.

``--policy NAME|FILE.toml`` picks a preset or a policy file (:mod:`goheap.policy`);
``--memory-limit 64MiB`` and ``--min-heap 4MiB`` override its pacer. The policy is built
and checked before anything runs: a bad name, file or value is a
:class:`goheap.PolicyError`, which the command line prints as its one error line (exit
status 2) before any heap exists.

This module is imported by ``goheap --help``: it does not import :mod:`goheap.policy`
until a command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["PRESET_NAMES", "policy_option", "policy_options", "resolve_policy"]

#: The presets' names, kept here for the help text; a test checks them against goheap.policy.PRESETS.
PRESET_NAMES = ("seed", "go1.27-classes", "modern-pacer", "modern")


def policy_option(fn):
    """Add --policy to a click command."""
    return click.option(
        "--policy", "policy", default="seed", show_default=True, metavar="NAME|FILE.toml",
        help=f"Size classes, page size, pacer and scavenger: a preset ({', '.join(PRESET_NAMES)}; "
             "see `goheap policies`) or a policy file. The collector is the 2013 stop-the-world one under all.",
    )(fn)  # fmt: skip


def policy_options(fn):
    """Add --policy, --memory-limit and --min-heap to a click command."""
    fn = click.option(
        "--min-heap", "min_heap", default=None, metavar="BYTES",
        help="Heap minimum at GOGC=100, scaled by GOGC/100 as Go >= 1.5 does (4MiB there; 0: none). Default: the policy's.",
    )(fn)  # fmt: skip
    fn = click.option(
        "--memory-limit", "memory_limit", default=None, metavar="BYTES|off",
        help="Soft memory limit as GOMEMLIMIT writes it (512MiB, 2GiB, off). Default: the policy's "
             "($GOMEMLIMIT under the modern presets).",
    )(fn)  # fmt: skip
    return policy_option(fn)


def resolve_policy(policy: str, memory_limit: str | None = None, min_heap: str | None = None) -> Policy:
    """The policy the options name, with the overrides applied and $GOMEMLIMIT read if it reads it.

    Raises :class:`goheap.PolicyError`.
    """
    from .policy import Policy

    return Policy.from_name(policy).resolve(memory_limit, min_heap)
