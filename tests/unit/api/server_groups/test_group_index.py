"""The project index of server groups (``project_server_groups/``) against a real etcd: written and
removed with the group, read by a project's listing and by GetQuotaSet's largest group, and written
by the backfill for groups from before it."""

from __future__ import annotations

import pytest

from services.api.quotas.quota import Quotas
from services.api.quotas.sets import QuotaSetsManager
from services.api.server_groups import manager as groups_module
from services.api.server_groups.manager import ServerGroupsManager
from services.core import context, keys
from services.core.context import RequestContext
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servergroups_pb2

P = servergroups_pb2.ServerGroupPolicy
ALICE = RequestContext("alice", "alice", frozenset({"member"}))
BOB = RequestContext("bob", "bob", frozenset({"member"}))
ADMIN = RequestContext("admin", "admin", frozenset({"admin"}))


def group() -> servergroups_pb2.ServerGroup:
    return servergroups_pb2.ServerGroup(name="g", policy=P.SERVER_GROUP_POLICY_AFFINITY)


async def index_keys(store: Store) -> list[str]:
    kvs, _ = await store.read_all(keys.PROJECT_SERVER_GROUPS, most=1000)
    return [kv.key for kv in kvs]


async def listed(groups: ServerGroupsManager, page_size: int, all_projects: bool = False) -> list[str]:
    seen: list[str] = []
    token = ""
    while True:
        request = servergroups_pb2.ListServerGroupsRequest(page_size=page_size, page_token=token,
                                                           all_projects=all_projects)  # fmt: skip
        reply = await groups.list(request)
        seen += [g.id for g in reply.server_groups]
        token = reply.next_page_token
        if not token:
            return seen


async def test_the_index_entry_comes_and_goes_with_the_group(store: Store) -> None:
    groups = ServerGroupsManager(store)
    context.bind(ALICE)
    mine = [await groups.create(group()) for _ in range(3)]
    context.bind(BOB)
    theirs = await groups.create(group())
    assert await index_keys(store) == sorted(
        [*(keys.project_server_group("alice", g.id) for g in mine), keys.project_server_group("bob", theirs.id)]
    )
    assert await listed(groups, 1) == [theirs.id]  # a project's own, through its index
    context.bind(ALICE)
    assert await listed(groups, 2) == sorted(g.id for g in mine)
    await groups.delete(mine[0].id)
    assert keys.project_server_group("alice", mine[0].id) not in await index_keys(store)
    context.bind(ADMIN)
    assert await listed(groups, 2, all_projects=True) == sorted([theirs.id, mine[1].id, mine[2].id])


async def test_the_quota_set_counts_the_largest_of_the_projects_groups_only(store: Store) -> None:
    groups = ServerGroupsManager(store)
    context.bind(BOB)
    bobs = await groups.create(group())
    context.bind(ALICE)
    small, large = await groups.create(group()), await groups.create(group())
    for made, members in ((small, ["s1"]), (large, ["s2", "s3"]), (bobs, ["s4", "s5", "s6"])):
        record = state_pb2.ServerGroupRecord(group=made)
        record.group.members.extend(members)
        await store.put(keys.server_group(made.id), record.SerializeToString())
    reply = await QuotaSetsManager(store, Quotas(store)).get("")
    assert reply.usage.server_group_members == 2


@pytest.mark.parametrize("project", ["alice", "a.b-c"])
async def test_the_backfill_indexes_groups_from_before_the_index(store: Store, project: str) -> None:
    old = servergroups_pb2.ServerGroup(id="old", name="g", project_id=project)
    await store.put(keys.server_group(old.id), state_pb2.ServerGroupRecord(group=old).SerializeToString())
    assert await groups_module.backfill(store) == 1
    assert await index_keys(store) == [keys.project_server_group(project, "old")]
    assert await groups_module.backfill(store) == 0  # once per deployment
