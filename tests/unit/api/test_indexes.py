"""Listings' reads against a real etcd (indexes.py): a filtered page read within its scan bound and
resumed exactly where it stopped, and records read through an index a batch at a time."""

from __future__ import annotations

from google.protobuf.wrappers_pb2 import StringValue

from services.api import indexes
from services.core.etcd import KV, Store


def kept_odd(kv: KV) -> StringValue | None:
    value = StringValue.FromString(kv.value)
    return value if int(value.value) % 2 else None


async def test_a_filtered_listing_resumes_exactly_where_it_stopped(store: Store) -> None:
    for n in range(20):
        await store.put(f"items/{n:02}", StringValue(value=str(n)).SerializeToString())
    for limit, most in ((3, 100), (1, 100), (100, 4), (2, 3)):
        found: list[str] = []
        page, after = await indexes.filtered_page(store, "items/", "", limit, kept_odd, most)
        while True:
            assert len(page) <= limit
            found += [v.value for v in page]
            if not after:
                break
            page, after = await indexes.filtered_page(store, "items/", after, limit, kept_odd, most)
        assert found == [str(n) for n in range(1, 20, 2)], (limit, most)


async def test_records_through_an_index_skip_the_gone_and_keep_its_order(store: Store) -> None:
    for name in ("a", "b", "c", "d", "e"):
        await store.put(f"index/{name}", b"")
        if name != "c":  # an index entry whose record is gone
            await store.put(f"records/{name}", name.encode())
    found = [kv.key async for kv in indexes.indexed(store, "index/", "a", lambda n: f"records/{n}", batch=2)]
    assert found == ["records/b", "records/d", "records/e"]
