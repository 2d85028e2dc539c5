"""gRPC message limits, set on every server and channel from here instead of gRPC's defaults.

A process accepts messages up to ``RECEIVE_BYTES``: well above the largest request the API
accepts (a CreateServer of at most ``CREATE_SERVER_MAX_BYTES``, an image chunk of at most
``IMAGE_CHUNK_MAX_BYTES``), so an oversized request reaches validation and is answered
INVALID_ARGUMENT naming its field; only a message larger than that is refused by the transport
(RESOURCE_EXHAUSTED). Answers are bounded where they are made: every list page is filled by
``PageFill`` (``fill_page``, ``fill_page_async``), which stops at the page's count or at about
``PAGE_BYTES``, whichever comes first, so any client's default 4 MiB receive limit holds it; a
process sends at most ``SEND_BYTES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

RECEIVE_BYTES = 8 << 20
SEND_BYTES = 8 << 20
# The largest CreateServer the API accepts, encoded (user_data, metadata and hints together).
CREATE_SERVER_MAX_BYTES = 256 << 10
# The largest chunk of an image upload (clients send 1 MiB).
IMAGE_CHUNK_MAX_BYTES = 4 << 20
# A list answer stops adding items once it holds this much (always at least one).
PAGE_BYTES = 1 << 20
# What an item adds to its answer past its own encoding, at most: a repeated field's tag and length.
ITEM_OVERHEAD = 8

M = TypeVar("M", bound=Message)


def options() -> list[tuple[str, Any]]:
    """The limits as gRPC channel and server options."""
    return [("grpc.max_receive_message_length", RECEIVE_BYTES), ("grpc.max_send_message_length", SEND_BYTES)]


class PageFill(Generic[M]):
    """One page of a list answer as it fills: at most ``limit`` items and, past the first, at most
    ``max_bytes`` of them encoded; the first item is always taken, however large. ``cursor`` is
    where the page ends: the cursor of the last item taken (or left out by ``skip``), which the
    next page resumes after."""

    def __init__(self, limit: int, max_bytes: int = PAGE_BYTES) -> None:
        self.items: list[M] = []
        self.cursor = ""
        self._limit = max(1, limit)
        self._max_bytes = max_bytes
        self._size = 0

    def take(self, cursor: str, item: M) -> bool:
        """Adds ``item`` (found at ``cursor``) when the page has room for it; False when it is full."""
        weight = item.ByteSize() + ITEM_OVERHEAD
        if len(self.items) >= self._limit or (self.items and self._size + weight > self._max_bytes):
            return False
        self.items.append(item)
        self._size += weight
        self.cursor = cursor
        return True

    def skip(self, cursor: str) -> None:
        """An item a filter left out, at ``cursor``: the next page may resume after it too."""
        self.cursor = cursor


def fill_page(items: Iterable[tuple[str, M]], limit: int, max_bytes: int = PAGE_BYTES) -> tuple[list[M], str]:
    """The first of ``items`` ((cursor, item), in cursor order) that fit one page, and the cursor of
    the last one taken when any is left over ("" when all fit). Reads one item past a full page."""
    page: PageFill[M] = PageFill(limit, max_bytes)
    for cursor, item in items:
        if not page.take(cursor, item):
            return page.items, page.cursor
    return page.items, ""


async def fill_page_async(
    items: AsyncIterable[tuple[str, M]], limit: int, max_bytes: int = PAGE_BYTES
) -> tuple[list[M], str]:
    """``fill_page`` over items read as they are needed (e.g. records read page by page)."""
    page: PageFill[M] = PageFill(limit, max_bytes)
    async for cursor, item in items:
        if not page.take(cursor, item):
            return page.items, page.cursor
    return page.items, ""
