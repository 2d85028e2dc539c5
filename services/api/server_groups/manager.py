"""Server groups: where a project's servers land relative to each other.

Each group is a ``state.ServerGroupRecord`` under ``server_groups/<id>``, changed only by
compare-and-swap: the api adds a member in the same transaction that creates the instance
(see ``servers.py``) and removes it when the server is deleted; the scheduler records where a
member was placed in the same transaction as its claim. Its project's index entry,
``project_server_groups/<project>/<id>``, is written and removed with it (a project's groups are
listed and counted through it); groups from before the index get theirs at api start (``backfill``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from etcd3aio._protobuf import RequestOp

from services.api import indexes, paging
from services.api.quotas.quota import Quotas
from services.api.validation import Violations, page_size
from services.core import context, keys, retry
from services.core.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.core.etcd import KV, Store
from services.core.ids import new_id
from services.core.instances import now
from services.core.message_limits import fill_page_async
from stratus.state.v1 import state_pb2
from stratus.v1 import servergroups_pb2

Policy = servergroups_pb2.ServerGroupPolicy
DEFAULT_MAX_PER_HOST = 1
MAX_PER_HOST_LIMIT = 10_000


def validate(group: servergroups_pb2.ServerGroup, has_group: bool) -> None:
    v = Violations()
    if not has_group:
        v.add("server_group", "is required")
    v.name("server_group.name", group.name)
    if group.policy not in Policy.values() or group.policy == Policy.SERVER_GROUP_POLICY_UNSPECIFIED:
        v.add("server_group.policy", "must be AFFINITY, ANTI_AFFINITY, SOFT_AFFINITY or SOFT_ANTI_AFFINITY")
    if group.HasField("rules"):
        if group.policy != Policy.SERVER_GROUP_POLICY_ANTI_AFFINITY:
            v.add("server_group.rules", "rules apply only to the ANTI_AFFINITY policy")
        else:
            v.int_range("server_group.rules.max_server_per_host", group.rules.max_server_per_host, 1,
                        MAX_PER_HOST_LIMIT)  # fmt: skip
    v.raise_if_any()


async def read(store: Store, group_id: str) -> tuple[state_pb2.ServerGroupRecord, int]:
    """The group's record and its mod revision; NotFound when there is none."""
    kv = await store.get(keys.server_group(group_id)) if group_id else None
    if kv is None:
        raise NotFound("server group", group_id)
    return state_pb2.ServerGroupRecord.FromString(kv.value), kv.mod_revision


async def update(
    store: Store, group_id: str, mutate: Callable[[state_pb2.ServerGroupRecord], bool | None]
) -> state_pb2.ServerGroupRecord | None:
    """Applies ``mutate`` by compare-and-swap until it wins (False from ``mutate``: no change).
    None when the group is gone."""

    async def attempt() -> state_pb2.ServerGroupRecord | retry.Again | None:
        try:
            record, revision = await read(store, group_id)
        except NotFound:
            return None
        if mutate(record) is False:
            return record
        won = await store.swap(keys.server_group(group_id), record.SerializeToString(), revision)
        return record if won else retry.AGAIN

    return await retry.until_done(attempt, what=f"server group {group_id}")


def project_groups(store: Store, project_id: str, after: str = "", batch: int = indexes.GET_BATCH) -> AsyncIterator[KV]:
    """The project's groups after the id ``after``, in id order, through its index (read as consumed,
    ``batch`` at a time)."""
    return indexes.indexed(store, keys.project_server_groups(project_id), after, keys.server_group, batch)


async def backfill(store: Store) -> int:
    """Indexes the groups written before ``project_server_groups/`` existed (once per deployment)."""

    def entry(kv: KV) -> list[RequestOp]:
        group = state_pb2.ServerGroupRecord.FromString(kv.value).group
        return [store.op_put(keys.project_server_group(group.project_id, group.id), b"")]

    return await indexes.backfill(store, "project_server_groups", keys.SERVER_GROUPS, entry)


async def forget_member(store: Store, group_id: str, instance_id: str) -> None:
    """Removes a deleted server from its group's members and placements."""

    def drop(record: state_pb2.ServerGroupRecord) -> bool | None:
        members = record.group.members
        if instance_id not in members and instance_id not in record.placements:
            return False
        kept = [m for m in members if m != instance_id]
        del members[:]
        members.extend(kept)
        record.placements.pop(instance_id, None)
        return None

    await update(store, group_id, drop)


class ServerGroupsManager:
    def __init__(self, store: Store, ledger: Quotas | None = None) -> None:
        self._store = store
        self._quotas = ledger or Quotas(store)

    async def create(self, group: servergroups_pb2.ServerGroup, has_group: bool = True) -> servergroups_pb2.ServerGroup:
        validate(group, has_group)
        ctx = context.current()
        new = servergroups_pb2.ServerGroup(
            id=new_id(), name=group.name, policy=group.policy, project_id=ctx.project_id, user_id=ctx.user_id,
            created_at=now(),
        )  # fmt: skip
        if group.policy == Policy.SERVER_GROUP_POLICY_ANTI_AFFINITY:
            new.rules.max_server_per_host = group.rules.max_server_per_host or DEFAULT_MAX_PER_HOST
        record = state_pb2.ServerGroupRecord(group=new)
        key = keys.server_group(new.id)
        puts = [self._store.op_put(key, record.SerializeToString()),
                self._store.op_put(keys.project_server_group(new.project_id, new.id), b"")]  # fmt: skip
        if not await self._quotas.commit(ctx.project_id, {"server_groups": 1}, [self._store.cmp_absent(key)], puts):
            raise Aborted(f"server group id {new.id} collided; try again")
        return new

    async def owned(self, group_id: str, project_id: str, field: str = "id") -> tuple[state_pb2.ServerGroupRecord, int]:
        """The group if it belongs to ``project_id``; NotFound otherwise (another project's group
        is not acknowledged)."""
        if not group_id:
            raise InvalidArgument([(field, "is required")])
        record, revision = await read(self._store, group_id)
        if record.group.project_id != project_id:
            raise NotFound("server group", group_id)
        return record, revision

    async def _visible(self, group_id: str) -> tuple[state_pb2.ServerGroupRecord, int]:
        if not group_id:
            raise InvalidArgument([("id", "is required")])
        record, revision = await read(self._store, group_id)
        ctx = context.current()
        if not ctx.is_admin and record.group.project_id != ctx.project_id:
            raise NotFound("server group", group_id)
        return record, revision

    async def get(self, group_id: str) -> servergroups_pb2.ServerGroup:
        record, _ = await self._visible(group_id)
        return record.group

    async def list(self, req: servergroups_pb2.ListServerGroupsRequest) -> servergroups_pb2.ListServerGroupsResponse:
        limit = page_size(req.page_size)
        ctx = context.current()
        if req.all_projects and not ctx.is_admin:
            raise PermissionDenied("all_projects needs the admin role", reason="ADMIN_REQUIRED")
        after = paging.decode(req.page_token, keys.SERVER_GROUPS)
        if req.all_projects:  # every group, in id order
            kvs = indexes.records(self._store, keys.SERVER_GROUPS, after)
        else:  # the project's, through its index
            after_id = after.removeprefix(keys.SERVER_GROUPS)
            kvs = project_groups(self._store, ctx.project_id, after_id, batch=min(limit + 1, indexes.GET_BATCH))
        found = ((kv.key, state_pb2.ServerGroupRecord.FromString(kv.value).group) async for kv in kvs)
        groups, last = await fill_page_async(found, limit)
        return servergroups_pb2.ListServerGroupsResponse(server_groups=groups, next_page_token=paging.next_token(last))

    async def delete(self, group_id: str) -> None:
        def empty(record: state_pb2.ServerGroupRecord) -> None:
            members = record.group.members
            if members:
                raise FailedPrecondition(
                    f"server group {group_id} still has {len(members)} member(s); delete them first: "
                    f"{', '.join(members[:5])}{' ...' if len(members) > 5 else ''}",
                    reason="GROUP_NOT_EMPTY", metadata={"members": str(len(members))},
                )  # fmt: skip

        async def remove(record: state_pb2.ServerGroupRecord, revision: int) -> bool:
            key = keys.server_group(group_id)
            gone = [self._store.op_delete(key),
                    self._store.op_delete(keys.project_server_group(record.group.project_id, group_id))]  # fmt: skip
            return await self._quotas.commit(record.group.project_id, {"server_groups": -1},
                                             [self._store.cmp_mod(key, revision)], gone)  # fmt: skip

        await retry.swap(lambda: self._visible(group_id), empty, remove, what=f"server group {group_id}")
