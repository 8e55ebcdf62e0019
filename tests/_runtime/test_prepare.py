"""prepare: compile jobs shared out between this process and helpers, once, with what it says on stderr.

The jobs here compile nothing: each records which process ran it, so the sharing out,
the markers and the messages can be checked in a second rather than a minute.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numba
import pytest

from goheap._runtime import prepare as P

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="interpreted, nothing is compiled or prepared")

LOG_ENV = "GOHEAP_TEST_PREPARE_LOG"


def record(what: str, fail_in_helper: bool = False) -> None:
    """A job's target: note (pid, what) in the log file; optionally refuse to run outside the test process."""
    if fail_in_helper and os.getpid() != int(os.environ["GOHEAP_TEST_PREPARE_PID"]):
        raise RuntimeError("this helper fails")
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(f"{os.getpid()} {what}\n")


def _job(name: str, seconds: float, fail_in_helper: bool = False) -> P.Job:
    return P.Job(name, f"{__name__}:record", (name, fail_in_helper), functions=1, seconds=seconds)


@pytest.fixture
def setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "log"
    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.setenv("GOHEAP_TEST_PREPARE_PID", str(os.getpid()))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(P, "cache_dir", lambda: str(tmp_path / "cache"))
    monkeypatch.setattr(P, "_cores", lambda: 2)
    return log


def _ran(log: Path) -> dict[str, int]:
    return {what: int(pid) for pid, what in (line.split(" ", 1) for line in log.read_text().splitlines())}


def test_jobs_are_shared_out_longest_first() -> None:
    jobs = [_job("a", 17), _job("b", 7), _job("c", 3), _job("d", 1)]
    assert [[j.name for j in share] for share in P._share(jobs, 2)] == [["a"], ["b", "c", "d"]]
    assert [[j.name for j in share] for share in P._share(jobs, 1)] == [["a", "b", "c", "d"]]


def test_prepare_runs_each_job_once_across_processes_and_says_so(setting: Path) -> None:
    jobs = [_job("collector", 17), _job("entries", 7), _job("page heap", 3)]
    err = io.StringIO()
    P.prepare(jobs, stream=err)
    ran = _ran(setting)
    assert set(ran) == {"collector", "entries", "page heap"}
    assert ran["collector"] == os.getpid()  # the longest job stays here, the others go to the helper
    assert ran["entries"] == ran["page heap"] != os.getpid()
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("goheap: compiling the runtime for this machine (2 processes")
    assert str(Path(P.cache_dir())) in lines[0]
    assert lines[1].startswith("goheap: compiled ")

    again = io.StringIO()
    P.prepare(jobs, stream=again)  # every job is marked done: nothing runs, nothing is said
    assert again.getvalue() == "" and len(setting.read_text().splitlines()) == 3


def test_a_helper_that_fails_leaves_its_jobs_to_this_process(setting: Path) -> None:
    jobs = [_job("collector", 17), _job("entries", 7, fail_in_helper=True)]
    P.prepare(jobs, stream=io.StringIO())
    assert _ran(setting) == {"collector": os.getpid(), "entries": os.getpid()}
