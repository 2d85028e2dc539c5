"""Host names a page at a time, in name order, from sources that order them differently.

ListHosts lists every host that has records under ``hosts/`` (``hosts/<host>/<kind>``) or a compute
service, in name order. The compute services come in that order (``compute/<host>``); etcd orders
the records by ``<host>/`` instead, which differs where a name goes on with a character below '/':
``a-1/`` sorts before ``a/`` while ``a`` < ``a-1``. ``record_hosts`` reads the records' keys (keys
only) from where the names after the cursor begin until it holds one name more than the page; a
name that sorts before those but was not read yet can only be a prefix of the largest one cut
before such a character, and those few are looked up. ``merged_page`` joins the sources' pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from services.core import keys
from services.core.etcd import Store


async def record_hosts(store: Store, after: str, limit: int) -> tuple[list[str], bool]:
    """The first ``limit`` names after ``after`` (in name order) of the hosts with records under
    ``hosts/``, and whether more follow. Reads the keys of about ``limit`` + 1 hosts."""
    found: set[str] = set()
    async for name in _names(store, after):
        if name > after:
            found.add(name)
        if len(found) > limit:
            break
    else:
        return sorted(found), False
    largest = max(found)
    for cut in range(1, len(largest)):
        prefix = largest[:cut]
        if largest[cut] < "/" and prefix > after and prefix not in found and await _has_records(store, prefix):
            found.add(prefix)
    return sorted(found)[:limit], True


def merged_page(sources: Sequence[tuple[Sequence[str], bool]], limit: int) -> tuple[list[str], bool]:
    """The first ``limit`` names of several sources' pages (each sorted, with whether more follow
    it), and whether more follow. A source with more bounds the page at its last name: past it,
    it holds names it has not given yet."""
    ends = [names[-1] for names, more in sources if more and names]
    names = sorted({n for found, _ in sources for n in found if not ends or n <= min(ends)})
    return names[:limit], bool(ends) or len(names) > limit


async def _names(store: Store, after: str) -> AsyncIterator[str]:
    """The hosts with records, each once, in etcd's order of their keys, from where the names after
    ``after`` begin (a few of the names read there, prefixes of ``after``, come before it)."""
    previous = ""
    async for page in store.scan(keys.HOSTS, start_after=keys.HOSTS + after if after else "", keys_only=True):
        for kv in page.kvs:
            name, _ = keys.split_host(kv.key)
            if name != previous:
                previous = name
                yield name


async def _has_records(store: Store, name: str) -> bool:
    return bool((await store.page(f"{keys.HOSTS}{name}/", limit=1, keys_only=True)).kvs)
