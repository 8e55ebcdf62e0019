"""goheap.command: one error style, output checks, GOGC parsing, help texts (no heap is run)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from goheap import cli
from goheap.command import CommandError, check_outputs, gogc_setting, parse_gogc_flag

pytestmark = pytest.mark.nojit


@pytest.mark.parametrize("text, value", [("0", 0), ("100", 100), (" 50 ", 50), ("off", -1), ("OFF", -1)])
def test_gogc_flags(text: str, value: int) -> None:
    assert parse_gogc_flag(text) == value


@pytest.mark.parametrize("text", ["-5", "-1", "50%", "Off", "", "1e3", "99999999999", "٣"])
def test_gogc_flags_are_strict(text: str) -> None:
    with pytest.raises(ValueError, match="GOGC must be a percentage N >= 0"):
        parse_gogc_flag(text)


@pytest.mark.parametrize(
    "environ, value, source",
    [
        ({}, 100, "default"),
        ({"GOGC": ""}, 100, "default"),
        ({"GOGC": "50"}, 50, "$GOGC='50'"),
        ({"GOGC": "off"}, -1, "$GOGC='off'"),
        ({"GOGC": "-5"}, 0, "$GOGC='-5', read as the 2013 runtime's atoi reads it"),
        ({"GOGC": "OFF"}, 0, "$GOGC='OFF', read as the 2013 runtime's atoi reads it"),
        ({"GOGC": "50x"}, 50, "$GOGC='50x', read as the 2013 runtime's atoi reads it"),
    ],
)
def test_gogc_from_the_environment_as_the_seed_reads_it(environ, value, source) -> None:
    assert gogc_setting(None, environ) == (value, source)
    assert gogc_setting(7, environ) == (7, "--gogc")


def test_outputs_that_are_inputs_or_each_other_are_refused(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("data")
    os.link(log, tmp_path / "hard.log")
    cases = [
        ({"-o": log}, {"the log": log}, "is the same file as the log"),
        ({"-o": tmp_path / "hard.log"}, {"the log": str(log)}, "is the same file as the log"),
        ({"--report": tmp_path / "r", "--heap-profile": tmp_path / "." / "r"}, {}, "would be the same file as --report"),
        ({"--report": tmp_path}, {}, "is a directory"),
        ({"--report": tmp_path / "no" / "r.html"}, {}, "no such directory"),
    ]
    for outputs, inputs, message in cases:
        with pytest.raises(CommandError, match=message):
            check_outputs(outputs, inputs)
    assert log.read_text() == "data" and sorted(p.name for p in tmp_path.iterdir()) == ["hard.log", "x.log"]
    check_outputs({"--report": tmp_path / "r.html", "--heap-profile": tmp_path / "p.pb.gz"}, {"the log": log})


@pytest.mark.skipif(os.geteuid() != 0 and not os.path.isdir("/proc"), reason="needs /proc")
def test_unwritable_directories_are_refused_before_work() -> None:
    with pytest.raises(CommandError, match=r"cannot write -o /proc/x\.stdout"):
        check_outputs({"-o": "/proc/x.stdout"})


@pytest.mark.parametrize(
    "args, message",
    [
        (["run"], "goheap run: error: Missing argument 'WORKLOAD'. (see 'goheap run --help')"),
        (["frobnicate"], "goheap: error: No such command 'frobnicate'."),
        (["run", "binarytrees", "--gogc", "-5"], "goheap run: error: Invalid value for '--gogc': GOGC must be"),
        (["replay", "t.npz", "--gogc", "-5"], "goheap replay: error: Invalid value for '--gogc': GOGC must be"),
        (["run", "binarytrees", "6", "--bogus"], "goheap run: error: unknown option '--bogus'"),
        (["run", "binarytrees", "-o", "/nonexistent/x"], "goheap run: error: cannot write -o /nonexistent/x.stdout: no such directory /nonexistent"),
        (["trace", "import", "-"], "goheap trace import: error: reading the log from standard input needs -o OUTPUT"),
        (["trace", "import", "-", "-o", "/proc/x.npz"], "goheap trace import: error: cannot write the trace file /proc/x.npz: "),
        (["trace", "info", "--nope"], "goheap trace info: error: No such option '--nope'"),
    ],
)
def test_every_error_is_one_line_with_status_2(args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert res.stderr.startswith(message) and res.stderr.count("\n") == 1, res.stderr
    assert "goheap-tmp" not in res.stderr and ".import" not in res.stderr  # a temporary name is never shown


def test_version() -> None:
    res = CliRunner().invoke(cli.main, ["--version"])
    assert res.exit_code == 0 and re.match(r"goheap \d+\.\d+\.\d+: the Go runtime's allocator", res.stdout)


def _commands(group: click.Group, prefix: str = "goheap"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


@pytest.mark.parametrize("path, command", list(_commands(cli.main)), ids=lambda v: v if isinstance(v, str) else "")
def test_each_command_has_a_one_line_description_and_an_example(path: str, command: click.Command) -> None:
    top = CliRunner().invoke(cli.main, [*path.split()[1:-1], "--help"]).stdout
    listed = re.search(rf"^  {path.split()[-1]} +(.+)$", top, re.M)
    assert listed and not listed.group(1).endswith(("...", "…")), top
    own = CliRunner().invoke(cli.main, [*path.split()[1:], "--help"]).stdout
    assert "Example" in own and "goheap " in own.split("Example", 1)[1], own


def test_the_gctrace_formats_are_the_runtimes() -> None:
    from goheap._runtime.gctrace import GCTRACE_FORMATS
    from goheap.trace import cli as trace_cli
    from goheap.trace.replay import MODES

    assert cli.GCTRACE_FORMATS == GCTRACE_FORMATS and trace_cli.MODES == MODES
