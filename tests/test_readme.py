"""The README's examples, checked so that they cannot drift from the code.

Generic, so that every section's examples are checked, whoever writes them:

* every ```python block runs, as ``example.py`` in a fresh directory that also holds the
  files the examples name (``prog.log``, ``prog.log.gz``: a small allocfreetrace log made
  here; ``prog.trace.npz``: its import; ``t.out``: a small execution trace of the tests'
  data). A plain ``` block right after a python block is
  that program's expected output (its stdout, its stderr, or both), compared line for
  line, with the directory's path written as ``/tmp``.
* every ``goheap ...`` command in an indented or ```sh block (after ``&&``, ``|`` or
  ``;`` too) is parsed by the real command line, as far as click checks it without
  running: the command exists, its options exist and their values are valid.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from goheap import cli

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)

# a small allocfreetrace log: what the examples' prog.log stands for
LOG = "".join(
    f"tracealloc({0xC000010000 + 16 * i:#x}, 0x10, *main.Node)\ngoroutine 1 [running]:\n"
    f"runtime.mallocgc(0x10, 0x0, 0x0)\n\t/usr/lib/go/src/runtime/malloc.go:1131 +0x7b1\n"
    f"main.bottomUp(0x1)\n\t/tmp/prog/main.go:14 +0x9b\n\n"
    for i in range(64)
) + "tracegc()\n\ngoroutine 2 [runnable]:\nmain.f()\n\t/tmp/prog/main.go:3\nend tracegc\n\n"


def _blocks() -> list[tuple[str, str, int]]:
    """(language, text, line) of every fenced block, in order."""
    text = README.read_text()
    return [(m[1], m[2], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def _python_examples() -> list[tuple[str, str | None, int]]:
    blocks = _blocks()
    out = []
    for k, (lang, text, line) in enumerate(blocks):
        if lang != "python":
            continue
        expected = None
        if k + 1 < len(blocks) and blocks[k + 1][0] == "":
            between = README.read_text().splitlines()[line + text.count("\n") : blocks[k + 1][2] - 1]
            if len(between) <= 4:  # the output block follows the program, a sentence at most between
                expected = blocks[k + 1][1]
        out.append((text, expected, line))
    return out


def _shell_commands() -> list[tuple[str, int]]:
    """Every ``goheap`` invocation in the README's indented and sh blocks, with its line."""
    text = README.read_text()
    lines = text.splitlines()
    candidates: list[tuple[str, int]] = []
    in_fence = None
    for n, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_fence = None if in_fence is not None else line[3:].strip()
            continue
        if in_fence in ("sh", "shell", "bash", "console") or (in_fence is None and line.startswith("    ")):
            candidates.append((line.strip(), n))
    out = []
    for command, n in candidates:
        command = re.sub(r"\s#\s.*$", "", command)
        for part in re.split(r"&&|\||;", command):
            words = part.split()
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words.pop(0)
            if words and words[0].endswith("goheap"):
                out.append((" ".join(words), n))
    return out


def _check_parses(words: list[str]) -> None:
    """Parse ``goheap WORDS`` as the command line would, without running anything."""
    command: click.Command = cli.main
    ctx = command.make_context("goheap", list(words), resilient_parsing=False)
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, [*getattr(ctx, "_protected_args", ()), *ctx.args])
        command = sub
        ctx = sub.make_context(name, rest, parent=ctx)


def test_the_readme_has_examples_of_both_kinds() -> None:
    assert len(_python_examples()) >= 2 and len(_shell_commands()) >= 5


@pytest.mark.parametrize("command, line", _shell_commands(), ids=lambda v: str(v)[:50])
def test_shell_example_parses(command: str, line: int) -> None:
    words = shlex.split(command)[1:]
    try:
        _check_parses(words)
    except click.exceptions.Exit:
        pass  # --help, --version
    except click.ClickException as exc:
        pytest.fail(f"README.md:{line}: {command!r}: {exc.format_message()}")


def _fixtures(directory: Path) -> None:
    execution_trace = Path(__file__).parent / "trace" / "data" / "fx-1.27.3.trace.gz"
    if execution_trace.exists():  # t.out: what runtime/trace.Start or go test -trace writes
        (directory / "t.out").write_bytes(gzip.decompress(execution_trace.read_bytes()))
    (directory / "prog.log").write_text(LOG)
    with gzip.open(directory / "prog.log.gz", "wt") as f:
        f.write(LOG)
    from goheap.trace import import_log

    import_log(directory / "prog.log").save(directory / "prog.trace.npz")


@pytest.mark.slow
@pytest.mark.parametrize("code, expected, line", _python_examples(), ids=lambda v: str(v)[:30])
def test_python_example_runs(tmp_path: Path, code: str, expected: str | None, line: int) -> None:
    _fixtures(tmp_path)
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOGCTRACE", "GODEBUG", "GORACE")}
    res = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600
    )
    assert res.returncode == 0, f"README.md:{line}: the example failed:\n{res.stderr[-3000:]}"
    if expected is not None:
        want = expected.strip().splitlines()
        outputs = [res.stdout, res.stderr, res.stdout + res.stderr]
        got = [o.replace(str(tmp_path), "/tmp").strip().splitlines() for o in outputs]
        assert want in got, f"README.md:{line}: the output differs from the README's:\n" + "\n".join(got[1] or got[0])
