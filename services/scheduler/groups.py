"""Server groups as the scheduler sees them: the records under ``server_groups/`` (watched), with
where their members are, plus the placements this scheduler has decided but not yet committed.

A claim for a member writes ``placements[instance] = host`` into the group record in the same
transaction as the host's usage, comparing the record's mod revision, so two schedulers cannot
break a policy between them. In-process, the pending placements make concurrent decisions for one
group see each other before they land.
"""

from __future__ import annotations

from services.core import keys
from services.core.etcd import Store
from services.core.watchcache import Entry, PrefixCache
from stratus.state.v1 import state_pb2

Record = state_pb2.ServerGroupRecord


class GroupCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: PrefixCache[Record] = PrefixCache(store, keys.SERVER_GROUPS, Record.FromString)
        self._records: dict[str, tuple[Record, int]] = {}
        self._pending: dict[str, dict[str, str]] = {}
        self._cache.subscribe(self._on_key)

    async def start(self) -> None:
        await self._cache.start()

    async def stop(self) -> None:
        await self._cache.stop()

    def _on_key(self, key: str, _old: Entry[Record] | None, new: Entry[Record] | None) -> None:
        group_id = key[len(keys.SERVER_GROUPS) :]
        if new is None:
            self._records.pop(group_id, None)
        else:
            self.apply(group_id, new.value, new.mod_revision)

    def apply(self, group_id: str, record: Record | None, revision: int) -> None:
        """A record known to be in etcd at ``revision`` (None: absent); older ones are ignored."""
        if record is None:
            self._records.pop(group_id, None)
            return
        held = self._records.get(group_id)
        if held is None or revision > held[1]:
            self._records[group_id] = (record, revision)

    def get(self, group_id: str) -> tuple[Record, int] | None:
        """The record and its mod revision, as last seen."""
        return self._records.get(group_id)

    async def resolve(self, group_id: str) -> tuple[Record, int] | None:
        """As ``get``, reading etcd when the watch has not delivered the group yet."""
        held = self._records.get(group_id)
        if held is not None:
            return held
        kv = await self._store.get(keys.server_group(group_id))
        if kv is None:
            return None
        self.apply(group_id, Record.FromString(kv.value), kv.mod_revision)
        return self._records.get(group_id)

    def view(self, group_id: str) -> Record | None:
        """The record with this scheduler's pending placements added (for filters and weighers)."""
        held = self._records.get(group_id)
        if held is None:
            return None
        pending = self._pending.get(group_id)
        if not pending:
            return held[0]
        record = Record()
        record.CopyFrom(held[0])
        record.placements.update(pending)
        return record

    def add_pending(self, group_id: str, instance_id: str, host: str) -> None:
        self._pending.setdefault(group_id, {})[instance_id] = host

    def drop_pending(self, group_id: str, instance_id: str) -> None:
        pending = self._pending.get(group_id)
        if pending is not None:
            pending.pop(instance_id, None)
            if not pending:
                del self._pending[group_id]
