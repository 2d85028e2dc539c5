"""A list page as every List fills it (message_limits.PageFill): at most its count, at most about
PAGE_BYTES past the first item, always at least one, and a cursor that resumes right after the last
item returned."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from google.protobuf.wrappers_pb2 import StringValue

from services.core.message_limits import ITEM_OVERHEAD, PAGE_BYTES, PageFill, fill_page, fill_page_async

Item = tuple[str, StringValue]


def items(*sizes: int) -> list[Item]:
    """Items of exactly these encoded sizes (a page counts ITEM_OVERHEAD on top), at cursors k00, k01, ..."""
    found = []
    for n, size in enumerate(sizes):
        value = next(v for extra in (2, 3, 4) if (v := StringValue(value="x" * (size - extra))).ByteSize() == size)
        found.append((f"k{n:02}", value))
    return found


def everything(source: list[Item], limit: int, max_bytes: int) -> list[list[str]]:
    """The cursors of every page, each page resuming after the previous one's cursor."""
    pages: list[list[str]] = []
    after = ""
    while True:
        page, cursor = fill_page(((c, i) for c, i in source if c > after), limit, max_bytes)
        pages.append([c for c, i in source if any(i is p for p in page)])
        if not cursor:
            return pages
        assert cursor == pages[-1][-1]  # the last item returned, not the one that did not fit
        after = cursor


def test_a_page_stops_at_its_count() -> None:
    page, cursor = fill_page(items(10, 10, 10, 10, 10), limit=2)
    assert len(page) == 2 and cursor == "k01"
    page, cursor = fill_page(items(10, 10), limit=2)
    assert len(page) == 2 and cursor == ""  # nothing left over: no cursor


def test_a_page_stops_at_its_bytes() -> None:
    per = 100 + ITEM_OVERHEAD
    page, cursor = fill_page(items(100, 100, 100, 100), limit=1000, max_bytes=3 * per)
    assert len(page) == 3 and cursor == "k02"
    page, cursor = fill_page(items(100, 100, 100, 100), limit=1000, max_bytes=3 * per - 1)
    assert len(page) == 2 and cursor == "k01"


def test_the_default_byte_bound_holds_a_page_under_a_clients_4_mib() -> None:
    page, cursor = fill_page(items(*[100_000] * 100), limit=1000)
    assert cursor and sum(i.ByteSize() + ITEM_OVERHEAD for i in page) <= PAGE_BYTES < 4 << 20
    assert len(page) == PAGE_BYTES // (100_000 + ITEM_OVERHEAD)


def test_a_page_holds_at_least_one_item_however_large() -> None:
    page, cursor = fill_page(items(5000, 10), limit=10, max_bytes=100)
    assert [i.ByteSize() for i in page] == [5000] and cursor == "k00"
    page, cursor = fill_page(items(10), limit=0, max_bytes=0)  # even a limit below one
    assert len(page) == 1 and cursor == ""


def test_pages_through_the_cursor_return_every_item_once_in_order() -> None:
    source = items(50, 400, 30, 30, 900, 10, 10, 10, 700, 20)
    for limit, max_bytes in ((1, 10_000), (3, 10_000), (1000, 500), (2, 450), (4, 1)):
        pages = everything(source, limit, max_bytes)
        assert [c for page in pages for c in page] == [c for c, _ in source], (limit, max_bytes)
        assert all(page for page in pages)


def test_skipped_items_move_the_cursor_until_the_page_is_full() -> None:
    page: PageFill[StringValue] = PageFill(2)
    assert page.take("a", StringValue(value="1"))
    page.skip("b")
    assert page.cursor == "b"  # the next page may resume after a left-out item
    assert page.take("c", StringValue(value="2")) and page.cursor == "c"
    assert not page.take("d", StringValue(value="3")) and page.cursor == "c"


async def test_the_async_fill_reads_only_what_the_page_needs() -> None:
    read: list[str] = []

    async def source(found: Iterable[Item]) -> AsyncIterator[Item]:
        for cursor, item in found:
            read.append(cursor)
            yield cursor, item

    page, cursor = await fill_page_async(source(items(*[10] * 100)), limit=3)
    assert len(page) == 3 and cursor == "k02"
    assert read == ["k00", "k01", "k02", "k03"]  # one past the full page, to know more follow
    page, cursor = await fill_page_async(source(items(10)), limit=3)
    assert len(page) == 1 and cursor == ""
