"""Go 1.22-1.27's size classes: the data table against the rules of Go's generator."""

from __future__ import annotations

import pytest

from goheap._runtime.gosizeclasses import GO_PAGE_SIZE, GO_SIZE_CLASSES, go_size_classes

pytestmark = pytest.mark.nojit


def generated_classes(max_small: int = 32768, page: int = GO_PAGE_SIZE, large_div: int = 128):
    """The classes mksizeclasses.go would generate, derived from its rules (written here
    independently of the table, so the two check each other)."""
    classes: list[tuple[int, int]] = []
    align = 8
    size = align
    while size <= max_small:
        if size & (size - 1) == 0:  # alignment grows at powers of two
            if size >= 2048:
                align = 256
            elif size >= 128:
                align = size // 8
            elif size >= 32:
                align = 16
        span = page
        while span % size > span // 8:  # at most 1/8 of the span left over
            span += page
        npages = span // page
        if classes and npages == classes[-1][1] and span // size == span // classes[-1][0]:
            classes[-1] = (size, npages)  # as many objects in as many pages: one class
        else:
            classes.append((size, npages))
        size += align
    out = []
    for size, npages in classes:  # round sizes up to fill the span with the same count
        span = npages * page
        out.append((max(size, (span // (span // size)) & ~(large_div - 1)), npages))
    return tuple(out)


def test_the_table_is_what_the_generator_makes() -> None:
    assert go_size_classes("1.27") == generated_classes()


def test_go_1_27_has_68_classes_with_8_kb_pages() -> None:
    table = go_size_classes("1.27")
    assert len(table) + 1 == 68  # class 0 (large objects) is not listed
    assert GO_PAGE_SIZE == 8192
    assert table[0] == (8, 1) and table[1] == (16, 1) and table[2] == (24, 1)
    assert table[-1] == (32768, 4)
    for size, npages in table:
        span = npages * GO_PAGE_SIZE
        assert span % size <= span // 8


def test_every_supported_version_has_a_table() -> None:
    assert sorted(GO_SIZE_CLASSES) == ["1.22", "1.23", "1.24", "1.25", "1.26", "1.27"]
    for version in GO_SIZE_CLASSES:
        assert go_size_classes(version) == go_size_classes("1.27")


def test_an_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'1\.21'.*1\.22, 1\.23, 1\.24, 1\.25, 1\.26, 1\.27"):
        go_size_classes("1.21")
