"""The services as the servicegroup shows them, composed from their records in etcd while no
servicegroup answers (restarting), a page at a time: the names come from the keys of ``services/``
(live) and ``services_seen/`` merged in ``<binary>/<host>`` order, the servicegroup's own, and
only the page's records are read."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.api.indexes import SCAN_MOST, merged
from services.core import instances, keys, service_members
from services.core.etcd import Store
from services.core.message_limits import fill_page
from stratus.state.v1 import state_pb2
from stratus.v1 import services_pb2


async def members_from_store(
    store: Store, binary: str, host: str, after: str, limit: int
) -> tuple[list[services_pb2.Service], str]:
    """The members after ``after`` (``<binary>/<host>``), of ``binary`` and ``host`` when given: at
    most ``limit`` and about ``PAGE_BYTES``, and the name to go on after when more may follow."""
    names, last = await _names(store, binary, host, after, limit)
    found = await store.get_many([key for name in names for key in _keys(name)])
    now = instances.now()
    members: list[tuple[str, services_pb2.Service]] = []
    for n, name in enumerate(names):
        live, admin, seen = found[3 * n : 3 * n + 3]
        if live is None and seen is None:  # gone since its key was read
            continue
        b, h = name.split("/", 1)
        members.append((name, service_members.compose(
            b, h, record=state_pb2.ServiceRecord.FromString(live.value) if live else None,
            admin=state_pb2.ServiceAdmin.FromString(admin.value) if admin else None,
            seen=state_pb2.ServiceSeen.FromString(seen.value) if seen else None, now=now,
        )))  # fmt: skip
    page, cut = fill_page(members, limit)
    return page, cut or last


async def _names(store: Store, binary: str, host: str, after: str, limit: int) -> tuple[list[str], str]:
    """Up to ``limit`` names of services after ``after``, and the name to go on after ("" at the
    end). Past ``SCAN_MOST`` names that ``host`` leaves out, the page comes back as it is."""
    if binary and host:
        name = f"{binary}/{host}"
        return ([name] if name > after else []), ""
    found: list[str] = []
    read = 0
    streams = [_keys_after(store, root, binary, after) for root in (keys.SERVICES, keys.SERVICES_SEEN)]
    async for name, _ in merged(streams):
        if not host or name.split("/", 1)[1] == host:
            if len(found) == limit:
                return found, found[-1]
            found.append(name)
        read += 1
        if read >= SCAN_MOST:
            return found, name
    return found, ""


async def _keys_after(store: Store, root: str, binary: str, after: str) -> AsyncIterator[str]:
    """The names (``<binary>/<host>``) under ``root``, of ``binary`` when given, after ``after``: keys only."""
    prefix = f"{root}{binary}/" if binary else root
    start = root + after if after else ""
    if not start.startswith(prefix):
        if start > prefix:  # past every name of ``binary``
            return
        start = ""
    async for page in store.scan(prefix, start_after=start, keys_only=True):
        for kv in page.kvs:
            yield kv.key[len(root) :]


def _keys(name: str) -> tuple[str, str, str]:
    """A service's live, admin and seen records."""
    return keys.SERVICES + name, keys.SERVICES_ADMIN + name, keys.SERVICES_SEEN + name
