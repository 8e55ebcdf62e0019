"""Where a sweep's runs execute: in this process, or on Dask distributed.

:class:`SerialRunner` runs them one after another here (``--serial``). :class:`DaskRunner`
runs them on a Dask cluster: by default a ``LocalCluster`` of one single-threaded worker
process per core, started for the sweep and closed after it; with a scheduler address
(``--scheduler tcp://HOST:8786`` or ``DASK_SCHEDULER_ADDRESS``) an existing cluster, which
is left running. Each worker loads the compiled runtime once, when it joins (a worker
plugin runs :func:`goheap.sweep.run.warm_up`), and keeps it for every run it is given; a
trace is sent to every worker once (``scatter``), not once per run.

Both yield one :class:`~goheap.sweep.run.RunRecord` per run as runs finish, and report
each run's start to ``on_start`` (the progress display's running count). A run that
raises comes back as a failed record; one whose worker died (a crash, or the nanny's
memory limit) too, as a ``KilledWorker`` failure: Dask does not retry it on another worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import HeapError
from .run import STARTED_TOPIC, RunRecord, execute, warm_up
from .spec import RunParams

__all__ = ["CONNECT_TIMEOUT_S", "DaskRunner", "SchedulerUnreachable", "SerialRunner", "default_workers"]

#: Seconds to wait for a scheduler given by address before giving up.
CONNECT_TIMEOUT_S = 4


class SchedulerUnreachable(HeapError, ConnectionError):
    """The Dask scheduler at the given address did not answer, or is no Dask scheduler."""

    __module__ = "goheap.sweep"


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _trace_of(traces: Mapping[str, Any], params: RunParams) -> Any:
    """The trace (or its scattered future) a run replays, by its source's digest; None for a workload."""
    digest = params.source.digest
    return traces.get(digest) if digest is not None else None


class SerialRunner:
    """Every run in this process, one after another."""

    description = "serially in this process"

    def run(self, runs: Sequence[RunParams], traces: Mapping[str, Any], on_start: Callable[[str], None]) -> Iterator[RunRecord]:
        warm_up()  # as a worker does when it joins: the first run's time is its own
        for params in runs:
            on_start(params.run_id)
            yield execute(params, _trace_of(traces, params))

    def cancel(self) -> None:
        pass

    def close(self, *, interrupted: bool = False) -> None:
        pass


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while worker processes are started: they inherit it, so that Ctrl-C
    reaches only this process, which cancels the sweep and shuts them down in order."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _warm_up_plugin():
    from distributed.diagnostics.plugin import WorkerPlugin

    class WarmUp(WorkerPlugin):
        """Loads goheap's compiled runtime in each worker as it joins."""

        name = "goheap-sweep-warm-up"

        def setup(self, worker) -> None:
            from goheap.sweep.run import warm_up

            warm_up()

    return WarmUp()


class DaskRunner:
    """Runs on Dask distributed: a LocalCluster of ``workers`` processes, or the scheduler at ``scheduler``.

    Raises :class:`SchedulerUnreachable` within :data:`CONNECT_TIMEOUT_S` seconds or so when
    the scheduler does not answer.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        import dask
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a bad address...
                raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
            self.description = f"on the Dask cluster at {scheduler}"
        else:
            n = workers or default_workers()
            # a run that kills its worker is reported, not retried on the next one
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}), _sigint_ignored():
                self.cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.ERROR,
                )  # fmt: skip
                self.client = Client(self.cluster, set_as_default=False)
            self.description = f"on a local Dask cluster of {n} worker process{'es' if n != 1 else ''}"
        try:
            self.client.register_plugin(_warm_up_plugin())
        except Exception:
            self.close()
            raise
        self._futures: list = []

    def run(self, runs: Sequence[RunParams], traces: Mapping[str, Any], on_start: Callable[[str], None]) -> Iterator[RunRecord]:
        from distributed import as_completed

        self.client.subscribe_topic(STARTED_TOPIC, lambda event: on_start(event[1]))
        scattered = {
            digest: self.client.scatter(trace, broadcast=True, hash=False)
            for digest, trace in traces.items()
            if any(p.source.digest == digest for p in runs)
        }
        token = uuid.uuid4().hex[:8]
        by_future = {}
        for params in runs:
            f = self.client.submit(
                execute, params, _trace_of(scattered, params),
                key=f"goheap-run-{params.run_id}-{token}", pure=False,
            )  # fmt: skip
            by_future[f] = params
        self._futures = list(by_future)
        # Results are gathered on the client's event loop; this thread only waits for them,
        # so a Ctrl-C (KeyboardInterrupt) never lands in the middle of a call into Dask.
        for future, result in as_completed(self._futures, loop=self.client.loop, with_results=True, raise_errors=False):
            params = by_future[future]
            if isinstance(result, RunRecord):
                record = result
            else:  # KilledWorker, a lost connection...: the run did not come back
                record = RunRecord(params, {"status": "failed", "error": f"{type(result).__name__}: {result}"})
            future.release()
            yield record

    def cancel(self) -> None:
        """Cancel the runs not finished (they are not recorded), and stop listening for starts."""
        with contextlib.suppress(Exception):
            pending = [f for f in self._futures if not f.done()]
            if pending:
                self.client.cancel(pending)
        self._futures = []
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(STARTED_TOPIC)

    def close(self, *, interrupted: bool = False) -> None:
        """Cancel what has not run, and shut down the cluster this runner started.

        interrupted: the sweep was stopped (Ctrl-C): what Dask logs about the runs it
        loses, now or as the process exits, is the shutdown asked for, so its loggers
        stay quiet from now on.
        """
        self.cancel()
        if interrupted:
            for name in _SHUTDOWN_LOGGERS:
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        with _quiet(_SHUTDOWN_LOGGERS):
            with contextlib.suppress(Exception):
                self.client.close()
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    self.cluster.close()


# Closing a cluster whose runs were cancelled mid-flight makes its comms log the streams
# they lose; that is the shutdown asked for, not an error to show.
_SHUTDOWN_LOGGERS = ("distributed", "tornado.application", "asyncio")


@contextlib.contextmanager
def _quiet(names):
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.CRITICAL))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
