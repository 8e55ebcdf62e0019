"""Tests for goheap.report.pprof: pprof heap profiles (profile.proto)."""

from __future__ import annotations

import gzip
import math
import os
import shutil
import subprocess
from decimal import Decimal, getcontext

import pytest

from goheap.report import profile_schema
from goheap.report.pprof import (
    SAMPLE_TYPES,
    Frame,
    HeapSample,
    build_heap_profile,
    read_profile,
    scale_heap_sample,
    write_heap_profile,
)

MEM_PROFILE_RATE = 512 * 1024  # Go's default runtime.MemProfileRate

ALLOC = Frame("main.alloc", "/src/main.go", 10)
MAIN_3 = Frame("main.main", "/src/main.go", 3)
MAIN_5 = Frame("main.main", "/src/main.go", 5)
GROW = Frame("bytes.growSlice", "/go/src/bytes/buffer.go", 7)
OTHER = Frame("main.other", "/src/other.go", 1)


def _samples() -> list[HeapSample]:
    return [
        # 10 sampled objects of 1 KiB, 4 still live.
        HeapSample((ALLOC, MAIN_3), 10, 10 * 1024, 4, 4 * 1024),
        # 2 sampled 64 KiB objects, both live.
        HeapSample((GROW, MAIN_5), 2, 2 * 65536, 2, 2 * 65536),
        # Shares its leaf frame with the first sample; nothing recorded.
        HeapSample((ALLOC, OTHER), 0, 0, 0, 0),
    ]


def _s(profile, index: int) -> str:
    return profile.string_table[index]


def _exact_scale(count: int, size: int, rate: int) -> tuple[int, int]:
    """The scaling formula evaluated in 50-digit decimal arithmetic."""
    getcontext().prec = 50
    avg = Decimal(size) / Decimal(count)
    scale = 1 / (1 - (-avg / Decimal(rate)).exp())
    return int(count * scale), int(size * scale)


# --------------------------------------------------------------------------
# scale_heap_sample


def test_scale_empty_pairs_are_zero() -> None:
    assert scale_heap_sample(0, 0, MEM_PROFILE_RATE) == (0, 0)
    assert scale_heap_sample(0, 100, MEM_PROFILE_RATE) == (0, 0)
    assert scale_heap_sample(5, 0, MEM_PROFILE_RATE) == (0, 0)
    assert scale_heap_sample(0, 0, 1) == (0, 0)


@pytest.mark.parametrize("rate", [1, 0, -3])
def test_scale_rate_at_most_one_is_identity(rate: int) -> None:
    assert scale_heap_sample(7, 4096, rate) == (7, 4096)
    assert scale_heap_sample(1, 1, rate) == (1, 1)


def test_scale_default_rate_small_objects() -> None:
    # avg = 1024, x = 1024 / 524288 = 1/512 and
    # 1 / (1 - e^-x) = 1/x + 1/2 + x/12 - ... = 512.500163 (to 6 places),
    # so 10 objects -> 5125.0016 -> 5125 and 10240 bytes -> 5248001.67.
    assert scale_heap_sample(10, 10240, MEM_PROFILE_RATE) == (5125, 5248001)
    assert _exact_scale(10, 10240, MEM_PROFILE_RATE) == (5125, 5248001)


def test_scale_default_rate_large_objects() -> None:
    # Objects 10x the rate are nearly always sampled: scale = 1/(1-e^-10)
    # = 1.0000454019..., so 3 objects stay 3 and the bytes grow by 0.0045%.
    size = 3 * 10 * MEM_PROFILE_RATE
    count, nbytes = scale_heap_sample(3, size, MEM_PROFILE_RATE)
    assert count == 3
    assert nbytes == int(size * 1.0000454019832)  # 15729628
    assert (count, nbytes) == _exact_scale(3, size, MEM_PROFILE_RATE)


@pytest.mark.parametrize(
    ("count", "size", "rate"),
    [(1, 16, 512 * 1024), (123, 123 * 48, 4096), (9, 9 * 8192, 8192), (2, 3, 2)],
)
def test_scale_matches_high_precision(count: int, size: int, rate: int) -> None:
    got = scale_heap_sample(count, size, rate)
    want = _exact_scale(count, size, rate)
    # Double precision can differ from the exact value only at a truncation
    # boundary; allow one unit there.
    assert abs(got[0] - want[0]) <= 1 and abs(got[1] - want[1]) <= 1
    assert got[0] >= count and got[1] >= size


# --------------------------------------------------------------------------
# schema


def test_schema_field_numbers_follow_profile_proto() -> None:
    expected = {
        "Profile": {
            "sample_type": 1, "sample": 2, "mapping": 3, "location": 4,
            "function": 5, "string_table": 6, "drop_frames": 7,
            "keep_frames": 8, "time_nanos": 9, "duration_nanos": 10,
            "period_type": 11, "period": 12, "comment": 13,
            "default_sample_type": 14,
        },
        "ValueType": {"type": 1, "unit": 2},
        "Sample": {"location_id": 1, "value": 2, "label": 3},
        "Label": {"key": 1, "str": 2, "num": 3, "num_unit": 4},
        "Mapping": {
            "id": 1, "memory_start": 2, "memory_limit": 3, "file_offset": 4,
            "filename": 5, "build_id": 6, "has_functions": 7,
            "has_filenames": 8, "has_line_numbers": 9, "has_inline_frames": 10,
        },
        "Location": {
            "id": 1, "mapping_id": 2, "address": 3, "line": 4, "is_folded": 5,
        },
        "Line": {"function_id": 1, "line": 2},
        "Function": {
            "id": 1, "name": 2, "system_name": 3, "filename": 4, "start_line": 5,
        },
    }
    for message, fields in expected.items():
        descriptor = getattr(profile_schema, message).DESCRIPTOR
        assert descriptor.full_name == f"perftools.profiles.{message}"
        got = {f.name: f.number for f in descriptor.fields}
        assert got == fields, message


def test_schema_wire_encoding() -> None:
    # Hand-checked bytes: field 6 (string_table, wire type 2) is tag 0x32;
    # Sample field 1 (location_id) is packed (tag 0x0a, then length).
    p = profile_schema.Profile(string_table=["", "x"], period=5)
    assert p.SerializeToString() == b"\x32\x00\x32\x01x\x60\x05"
    s = profile_schema.Sample(location_id=[1, 2, 300], value=[-1])
    assert s.SerializeToString() == (
        b"\x0a\x04\x01\x02\xac\x02" + b"\x12\x0a" + b"\xff" * 9 + b"\x01"
    )


# --------------------------------------------------------------------------
# build_heap_profile / read_profile


def test_round_trip_header_fields() -> None:
    data = build_heap_profile(
        _samples(),
        rate=MEM_PROFILE_RATE,
        time_nanos=1_700_000_000_000_000_000,
        duration_nanos=42,
        comments=["goheap test", "second"],
    )
    assert data[:2] != b"\x1f\x8b"  # build_heap_profile is uncompressed
    p = read_profile(data)
    assert [(_s(p, t.type), _s(p, t.unit)) for t in p.sample_type] == [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ]
    assert list(SAMPLE_TYPES) == [
        (_s(p, t.type), _s(p, t.unit)) for t in p.sample_type
    ]
    assert (_s(p, p.period_type.type), _s(p, p.period_type.unit)) == (
        "space",
        "bytes",
    )
    assert p.period == MEM_PROFILE_RATE
    assert _s(p, p.default_sample_type) == "inuse_space"
    assert p.time_nanos == 1_700_000_000_000_000_000
    assert p.duration_nanos == 42
    assert [_s(p, c) for c in p.comment] == ["goheap test", "second"]
    assert p.drop_frames == 0 and p.keep_frames == 0


def test_round_trip_values_are_scaled() -> None:
    p = read_profile(build_heap_profile(_samples(), rate=MEM_PROFILE_RATE))
    assert len(p.sample) == 3
    # First sample: see test_scale_default_rate_small_objects.  In-use:
    # 4 objects / 4096 bytes at the same average size -> x512.500163.
    assert list(p.sample[0].value) == [5125, 5248001, 2050, 2099200]
    # 64 KiB objects: x = 65536/524288 = 1/8, scale = 1/(1-e^-1/8) = 8.5104...
    scale = 1 / (1 - math.exp(-1 / 8))
    want = [int(2 * scale), int(131072 * scale)] * 2
    assert list(p.sample[1].value) == want == [17, 1115476, 17, 1115476]
    # The all-zero sample is kept.
    assert list(p.sample[2].value) == [0, 0, 0, 0]


def test_rate_one_values_unscaled() -> None:
    p = read_profile(build_heap_profile(_samples(), rate=1))
    assert p.period == 1
    assert [list(s.value) for s in p.sample] == [
        [10, 10240, 4, 4096],
        [2, 131072, 2, 131072],
        [0, 0, 0, 0],
    ]


def test_string_table() -> None:
    p = read_profile(build_heap_profile(_samples(), rate=MEM_PROFILE_RATE))
    table = list(p.string_table)
    assert table[0] == ""
    assert len(table) == len(set(table)), "strings must be interned once"
    for name in ("main.alloc", "main.main", "bytes.growSlice", "main.other",
                 "/src/main.go", "/go/src/bytes/buffer.go", "/src/other.go"):
        assert name in table


def test_functions_and_locations_deduplicated() -> None:
    p = read_profile(build_heap_profile(_samples(), rate=MEM_PROFILE_RATE))

    # Ids are 1..n in order of first appearance.
    assert [f.id for f in p.function] == [1, 2, 3, 4]
    assert [l.id for l in p.location] == [1, 2, 3, 4, 5]

    funcs = {f.id: (_s(p, f.name), _s(p, f.filename)) for f in p.function}
    assert sorted(funcs.values()) == sorted([
        ("main.alloc", "/src/main.go"),
        ("main.main", "/src/main.go"),
        ("bytes.growSlice", "/go/src/bytes/buffer.go"),
        ("main.other", "/src/other.go"),
    ])
    for f in p.function:
        assert f.system_name == f.name

    # One location per distinct frame; main.main appears at two lines, so it
    # has two locations sharing one function.
    frames = {}
    for loc in p.location:
        assert len(loc.line) == 1
        name, filename = funcs[loc.line[0].function_id]
        frames[loc.id] = Frame(name, filename, loc.line[0].line)
    assert sorted(frames.values(), key=repr) == sorted(
        [ALLOC, MAIN_3, MAIN_5, GROW, OTHER], key=repr
    )
    # Addresses are distinct so tools never merge locations.
    assert len({loc.address for loc in p.location}) == len(p.location)

    stacks = [[frames[i] for i in s.location_id] for s in p.sample]
    assert stacks == [[ALLOC, MAIN_3], [GROW, MAIN_5], [ALLOC, OTHER]]
    assert p.sample[0].location_id[0] == p.sample[2].location_id[0]


def test_mapping_is_self_describing() -> None:
    p = read_profile(build_heap_profile(_samples(), rate=MEM_PROFILE_RATE))
    assert len(p.mapping) == 1
    m = p.mapping[0]
    assert m.id == 1 and m.has_functions and m.has_filenames
    assert m.has_line_numbers
    for loc in p.location:
        assert loc.mapping_id == 1
        assert m.memory_start <= loc.address < m.memory_limit


def test_block_size_label() -> None:
    p = read_profile(build_heap_profile(_samples(), rate=MEM_PROFILE_RATE))
    labels = [[(_s(p, l.key), l.num) for l in s.label] for s in p.sample]
    assert labels == [[("bytes", 1024)], [("bytes", 65536)], []]


def test_empty_profile() -> None:
    p = read_profile(build_heap_profile([], rate=MEM_PROFILE_RATE))
    assert len(p.sample) == 0 and len(p.location) == 0
    assert len(p.sample_type) == 4
    assert p.string_table[0] == ""


def test_invalid_samples_rejected() -> None:
    with pytest.raises(ValueError):
        build_heap_profile([HeapSample((ALLOC,), -1, 0, 0, 0)], rate=1)
    with pytest.raises(TypeError):
        build_heap_profile([HeapSample(("main.f",), 1, 8, 1, 8)], rate=1)  # type: ignore[arg-type]


def test_numpy_integers_accepted() -> None:
    np = pytest.importorskip("numpy")
    s = HeapSample((ALLOC,), np.int64(3), np.int64(48), np.uint32(1), np.int64(16))
    p = read_profile(build_heap_profile([s], rate=1))
    assert list(p.sample[0].value) == [3, 48, 1, 16]


def test_write_heap_profile_is_gzip(tmp_path) -> None:
    path = tmp_path / "heap.pb.gz"
    write_heap_profile(path, _samples(), rate=MEM_PROFILE_RATE, comments=["c"])
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[2] == 8  # gzip magic, deflate
    assert gzip.decompress(raw) == build_heap_profile(
        _samples(), rate=MEM_PROFILE_RATE, comments=["c"]
    )
    # read_profile accepts the path (str or PathLike) and the gzip bytes.
    for source in (path, str(path), raw):
        p = read_profile(source)
        assert list(p.sample[0].value) == [5125, 5248001, 2050, 2099200]
    # Reproducible: same input, same bytes.
    path2 = tmp_path / "again.pb.gz"
    write_heap_profile(path2, _samples(), rate=MEM_PROFILE_RATE, comments=["c"])
    assert path2.read_bytes() == raw


# --------------------------------------------------------------------------
# the real consumer


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="go is not on PATH")
def test_go_tool_pprof_top(tmp_path) -> None:
    path = tmp_path / "heap.pb.gz"
    write_heap_profile(path, _samples(), rate=MEM_PROFILE_RATE)
    env = dict(os.environ)
    env.setdefault("HOME", str(tmp_path))
    env["PPROF_TMPDIR"] = str(tmp_path)
    env["PPROF_BINARY_PATH"] = str(tmp_path)  # no binary to find, on purpose
    result = subprocess.run(
        ["go", "tool", "pprof", "-top", "-sample_index=alloc_space", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Type: alloc_space" in output
    lines = result.stdout.splitlines()
    for name in ("main.alloc", "bytes.growSlice", "main.main"):
        assert any(line.split()[-1:] == [name] for line in lines), output
    # Symbolic names, not addresses.
    assert "0x" not in result.stdout, output
    # alloc_space total: 5248001 + 1115476 bytes = 6.07MB.
    assert "6.07MB total" in output, output
