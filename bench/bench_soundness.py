"""Long run of the collector's soundness state machine (tests/gc/test_soundness.py).

The test suite runs the machine for a few thousand steps; this runs it for ``--steps``
(default 10^6) and reports how many steps ran and how long they took. Every step is
checked as in the test: after each collection every object the model says is reachable
is allocated and holds exactly what was written, every unreachable one was freed, and
``Heap.check()`` passes. Hypothesis draws the programs; a failure is shrunk and printed,
and the script exits 1. Not a benchmark of speed: the time is
reported so that the run can be planned.

Usage::

    .venv/bin/python bench/bench_soundness.py [--steps N] [--steps-per-example K]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "gc")]

from test_soundness import HeapModel  # noqa: E402 - from the tests, found through the path above


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10**6)
    ap.add_argument("--steps-per-example", type=int, default=200)
    args = ap.parse_args()
    done = [0]

    class Counted(HeapModel):
        @invariant()
        def count(self):
            done[0] += 1

    t0 = time.monotonic()
    try:
        while done[0] < args.steps:  # in rounds of 50 programs, to report progress
            run_state_machine_as_test(
                Counted,
                settings=settings(
                    max_examples=50,
                    stateful_step_count=args.steps_per_example,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    print_blob=True,
                ),
            )
            print(f"{done[0]} steps in {time.monotonic() - t0:.0f} s", flush=True)
    except Exception:
        print(f"failed after {done[0]} steps, {time.monotonic() - t0:.0f} s", flush=True)
        raise SystemExit(1) from None
    elapsed = time.monotonic() - t0
    print(f"soundness state machine: {done[0]} steps, {elapsed:.0f} s ({elapsed / done[0] * 1e3:.2f} ms/step), all sound")


if __name__ == "__main__":
    main()
