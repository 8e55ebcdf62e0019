"""goheap.Policy: presets, policy files and dictionaries, byte counts, validation, and the CLI listing.

Nothing here builds a heap (see test_policy_runs.py for heaps under every preset).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import goheap
from goheap.cli import main
from goheap.policy import (
    PRESETS,
    SCOPE_NOTE,
    SEED,
    Pacer,
    Policy,
    PolicyError,
    Scavenger,
    SizeClassTable,
    format_bytes,
    parse_byte_count,
)

pytestmark = pytest.mark.nojit  # no heap is built: these run interpreted in CI too

MiB = 1 << 20


# ---------------------------------------------------------------- presets


def test_the_presets_and_what_they_change() -> None:
    assert list(PRESETS) == ["seed", "go1.27-classes", "modern-pacer", "modern"]
    seed, classes, pacer, modern = PRESETS.values()
    assert seed is SEED and seed.is_seed and Policy() == SEED
    assert seed.size_classes.num_classes == 61 and seed.page_size == 4096
    assert seed.pacer == Pacer() and seed.scavenger == Scavenger()
    # each preset is a named difference from the seed
    assert classes.size_classes.num_classes == 68 and classes.page_size == 8192
    assert (classes.pacer, classes.scavenger) == (seed.pacer, seed.scavenger)
    assert pacer.size_classes == seed.size_classes and pacer.scavenger == seed.scavenger
    assert pacer.pacer == Pacer(min_heap=4 * MiB, gomemlimit=True)
    assert modern.size_classes == classes.size_classes and modern.pacer == pacer.pacer
    assert modern.scavenger == Scavenger(release_idle_after_ns=None, retain_extra_percent=10)
    assert not any(p.is_seed for p in (classes, pacer, modern))


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_survives_a_round_trip_through_json(name: str) -> None:
    policy = PRESETS[name]
    data = json.loads(json.dumps(policy.to_dict()))
    assert Policy.from_dict(data) == policy
    assert Policy.from_name(name) is policy


def test_is_seed_ignores_the_name_but_not_the_numbers() -> None:
    assert Policy.from_dict({"name": "mine"}).is_seed
    assert not SEED.replace(min_heap=1).is_seed
    assert not SEED.replace(force_gc_period_ns=10**9).is_seed


def test_summary_names_every_part() -> None:
    line = PRESETS["modern"].summary()
    assert line.startswith("modern: ")
    for part in ("Go 1.27 (68 classes, 8192-byte pages)", "minimum heap 4 MiB", "heap goal + 10%", "forces a GC after 120 s"):
        assert part in line
    assert PRESETS["modern"].trace_line() == "goheap policy " + line


# ---------------------------------------------------------------- size-class tables


def test_msize_on_8k_pages_gives_go_1_3s_67_classes() -> None:
    # Go 1.3 moved to 8 KB pages with the same InitSizes: 67 classes (with class 0)
    table = SizeClassTable.computed(8192)
    assert table.num_classes == 67
    assert table.rows[:4] == ((8, 1), (16, 1), (32, 1), (48, 1))


def test_computed_with_the_seeds_numbers_is_the_seeds_table() -> None:
    assert SizeClassTable.computed().rows == SizeClassTable.seed().rows


def test_go_rows_are_gos_generated_columns() -> None:
    rows = SizeClassTable.go("1.27").go_rows()
    assert len(rows) == 67
    c, size, span, objects, tail, waste = rows[2]
    assert (c, size, span, objects, tail, round(waste, 2)) == (3, 24, 8192, 341, 8, 29.24)
    assert [round(r[5], 2) for r in rows[-3:]] == [10.00, 4.91, 12.50]


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([[8, 1], [8, 1]], "sizes must increase"),
        ([[8, 1], [12, 1]], "not a multiple of 8"),
        ([[8, 1], [1032, 1]], "multiples of 128"),
        ([[8, 1], [40960, 10]], "larger than the small-object limit of 32768"),
        ([[8, 1], [16384, 1]], "holds no object"),
        ([[8, 0]], "at least one page"),
        ([], "non-empty list"),
        ([[8, 1, 3]], "row 1"),
        ([[8, 1]] * 0 + [[8 * (i + 1), 1] for i in range(256)], "at most 255"),
    ],
)
def test_an_explicit_table_is_validated_naming_the_row(rows, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        SizeClassTable.table(rows)


def test_a_table_may_end_below_32k_and_its_largest_class_is_the_small_object_limit() -> None:
    table = SizeClassTable.table([[16, 1], [64, 1], [512, 1], [4096, 2]])
    assert table.num_classes == 5 and table.max_small_size == 4096
    classes = table.build()
    assert [classes.size_to_class(n) for n in (1, 16, 17, 64, 65, 1000, 4096)] == [1, 1, 2, 2, 3, 4, 4]


@pytest.mark.parametrize("page_size", [2048, 6144, 1 << 17, "4096"])
def test_page_sizes_are_powers_of_two_from_4k_to_64k(page_size) -> None:
    with pytest.raises(PolicyError, match="page_size"):
        SizeClassTable.computed(page_size)


# ---------------------------------------------------------------- policy files


def _write(tmp_path, text: str, name: str = "mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_policy_file_with_every_part(tmp_path) -> None:
    path = _write(
        tmp_path,
        """
        description = "16 KB pages, a tight pacer"
        [size_classes]
        source = "computed"
        page_size = 16384
        tail_waste_divisor = 16
        [pacer]
        min_heap = "8MiB"
        memory_limit = "1GiB"
        [scavenger]
        release_idle_after_ns = "off"
        retain_extra_percent = 25
        """,
    )
    policy = Policy.load(path)
    assert policy.name == "mine" and policy.description == "16 KB pages, a tight pacer"
    assert policy.page_size == 16384 and policy.size_classes.source == "computed"
    assert dict(policy.size_classes.params)["tail_waste_divisor"] == 16
    assert policy.pacer == Pacer(min_heap=8 * MiB, memory_limit=1 << 30)
    assert policy.scavenger == Scavenger(release_idle_after_ns=None, retain_extra_percent=25)
    assert Policy.from_name(str(path)) == policy
    assert Policy.from_dict(policy.to_dict()) == policy


def test_a_file_based_on_a_preset_changes_only_what_it_says(tmp_path) -> None:
    path = _write(tmp_path, 'name = "modern-4k"\nbased_on = "modern"\n[size_classes]\nsource = "seed"\n')
    policy = Policy.load(path)
    modern = PRESETS["modern"]
    assert policy.name == "modern-4k" and policy.size_classes == SEED.size_classes
    assert (policy.pacer, policy.scavenger) == (modern.pacer, modern.scavenger)


def test_an_explicit_table_in_a_file(tmp_path) -> None:
    path = _write(tmp_path, "[size_classes]\nsource = \"table\"\npage_size = 8192\nrows = [[16, 1], [48, 1], [256, 1], [2048, 1], [32768, 4]]\n")
    table = Policy.load(path).size_classes
    assert table.rows == ((16, 1), (48, 1), (256, 1), (2048, 1), (32768, 4)) and table.page_size == 8192


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pacer]\nmemory_limit = \"64MB\"\n", "mine.toml: [pacer] memory_limit: '64MB' is not a byte count"),
        ("[pacer]\nmin_heap = -1\n", "mine.toml: [pacer] min_heap: byte count -1 is negative"),
        ("[pacer]\nlimit = 5\n", "mine.toml: [pacer] limit: unknown key"),
        ("colour = 5\n", "mine.toml: colour: unknown key"),
        ("based_on = \"ancient\"\n", "mine.toml: based_on: unknown preset 'ancient'"),
        ("[size_classes]\nsource = \"go1.27\"\npage_size = 4096\n", "mine.toml: [size_classes] page_size: Go's classes are for 8192-byte pages"),
        ("[size_classes]\nsource = \"go1.12\"\n", "mine.toml: [size_classes] source: no size-class table for go1.12"),
        ("[size_classes]\nsource = \"table\"\n", "mine.toml: [size_classes] rows: missing"),
        ("[size_classes]\nsource = \"table\"\nrows = [[8, 1], [20, 1]]\n", "mine.toml: [size_classes] rows: class 2 (20 bytes/obj, 1 pages/span): the size is not a multiple of 8"),
        ("[size_classes]\nsource = \"computed\"\ntail_waste_divisor = 0\n", "tail_waste_divisor: 0 is not a positive integer"),
        ("[size_classes]\nsource = \"table\"\nrows = [[8, 1]]\ntail_waste_divisor = 8\n", "tail_waste_divisor: unknown key"),
        ("[size_classes]\nsource = \"seed\"\npage_size = 8192\n", "the seed's classes are for 4096-byte pages"),
        ("[scavenger]\nforce_gc_period_ns = 1\n", "mine.toml: [scavenger] force_gc_period_ns and release_idle_after_ns must be at least 2 ns"),
        ("[scavenger]\nretain_extra_percent = -5\n", "retain_extra_percent: -5 is negative"),
        ("[scavenger]\nretain_extra_percent = true\n", "retain_extra_percent: True is not an integer"),
        ("pacer = 3\n", "mine.toml: [pacer]: must be a table"),
        ("name = \n", "mine.toml: not valid TOML"),
    ],
)
def test_a_bad_policy_file_names_the_file_the_key_and_why(tmp_path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    assert message.replace("mine.toml", str(path)) in str(info.value)
    assert isinstance(info.value, goheap.ConfigError) and isinstance(info.value, goheap.HeapError)


def test_a_missing_file_and_an_unknown_preset(tmp_path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        Policy.from_name(str(tmp_path / "none.toml"))
    with pytest.raises(PolicyError, match=r"unknown policy 'moder' \(known: seed, go1.27-classes, modern-pacer, modern; or a policy file"):
        Policy.from_name("moder")


# ---------------------------------------------------------------- byte counts and the memory limit


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("1000", 1000), ("10B", 10), ("512MiB", 512 * MiB), ("2GiB", 2 << 30), ("1KiB", 1024), ("3TiB", 3 << 40), (77, 77)],
)
def test_byte_counts_as_gomemlimit_writes_them(text, value: int) -> None:
    assert parse_byte_count(text) == value


@pytest.mark.parametrize("text", ["", "MiB", "5MB", "5mib", "1.5GiB", "-1", "+1", " 1", "1 MiB", "8388608TiB", "0x10", -1, True, 1.0])
def test_what_gomemlimit_refuses(text) -> None:
    with pytest.raises(ValueError):
        parse_byte_count(text)


def test_format_bytes_picks_the_largest_unit_that_divides() -> None:
    assert [format_bytes(n) for n in (4 * MiB, 1536 << 10, 100, 0)] == ["4 MiB", "1536 KiB", "100 B", "0 B"]


def test_gomemlimit_is_read_only_by_policies_whose_pacer_reads_it() -> None:
    env = {"GOMEMLIMIT": "64MiB"}
    assert PRESETS["modern"].resolve(environ=env).pacer.memory_limit == 64 * MiB
    assert PRESETS["modern-pacer"].resolve(environ=env).pacer.memory_limit == 64 * MiB
    assert SEED.resolve(environ=env) is SEED  # the 2013 runtime never read it
    assert PRESETS["modern"].resolve(environ={"GOMEMLIMIT": "off"}) is PRESETS["modern"]
    # an explicit limit wins over the environment, and "off" removes one
    assert PRESETS["modern"].resolve("1GiB", environ=env).pacer.memory_limit == 1 << 30
    assert PRESETS["modern"].resolve("off", environ=env).pacer.memory_limit is None
    assert SEED.resolve(memory_limit=32 * MiB, min_heap="4MiB").pacer == Pacer(min_heap=4 * MiB, memory_limit=32 * MiB)
    with pytest.raises(PolicyError, match="GOMEMLIMIT=lots: 'lots' is not a byte count"):
        PRESETS["modern"].resolve(environ={"GOMEMLIMIT": "lots"})
    with pytest.raises(PolicyError, match="min heap: '4MB'"):
        SEED.resolve(min_heap="4MB")


def test_heap_config_refuses_a_bad_policy_before_building_anything(monkeypatch) -> None:
    monkeypatch.setenv("GOMEMLIMIT", "4 MiB")
    with pytest.raises(PolicyError, match="GOMEMLIMIT=4 MiB"):
        goheap.Heap(arena_size=16 * MiB, policy="modern")
    with pytest.raises(PolicyError, match="unknown policy"):
        goheap.Heap(arena_size=16 * MiB, policy="nope")
    with pytest.raises(PolicyError, match="policy must be"):
        goheap.Heap(arena_size=16 * MiB, policy=3)
    with pytest.raises(PolicyError, match="memory limit"):
        goheap.Heap(arena_size=16 * MiB, memory_limit=-1)


# ---------------------------------------------------------------- the CLI


def test_the_help_text_names_every_preset() -> None:
    from goheap.policy_cli import PRESET_NAMES

    assert PRESET_NAMES == tuple(PRESETS)


def test_goheap_policies_lists_each_preset_on_one_line_and_the_scope() -> None:
    result = CliRunner().invoke(main, ["policies"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == list(PRESETS)
    assert lines[-1] == SCOPE_NOTE and "stop-the-world" in SCOPE_NOTE
    data = json.loads(CliRunner().invoke(main, ["policies", "--json"]).output)
    assert {name: Policy.from_dict(d) for name, d in data.items()} == PRESETS


def test_sizeclasses_prints_gos_columns_for_any_policy(tmp_path) -> None:
    result = CliRunner().invoke(main, ["sizeclasses", "--policy", "go1.27-classes"])
    assert result.exit_code == 0, result.output
    title, header, *rows = result.output.splitlines()
    assert title == "size classes of policy go1.27-classes: Go 1.27 (68 classes, 8192-byte pages)"
    assert header.split() == ["class", "bytes/obj", "bytes/span", "objects", "tail", "waste", "max", "waste"]
    assert rows[2].split() == ["3", "24", "8192", "341", "8", "29.24%"]
    assert len(rows) == 67
    path = _write(tmp_path, "[size_classes]\nsource = \"table\"\nrows = [[8, 1], [24, 1]]\n")
    out = CliRunner().invoke(main, ["sizeclasses", "--policy", str(path)]).output.splitlines()
    assert out[2].split() == ["1", "8", "4096", "512", "0", "87.50%"] and len(out) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sizeclasses", "--policy", "nope"], "goheap sizeclasses: error: unknown policy 'nope'"),
        (["run", "--policy", "nope", "binarytrees"], "goheap run: error: unknown policy 'nope'"),
        (["run", "--memory-limit", "64MB", "binarytrees"], "goheap run: error: memory limit: '64MB' is not a byte count"),
        (["run", "--min-heap", "lots", "binarytrees"], "goheap run: error: min heap: 'lots' is not a byte count"),
        (["replay", "--policy", "nope", "missing.trace.npz"], "goheap replay: error: unknown policy 'nope'"),
    ],
)
def test_a_bad_policy_on_the_command_line_is_one_line_and_status_2(args, message: str) -> None:
    result = CliRunner().invoke(main, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(message)
