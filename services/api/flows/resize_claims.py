"""A resize on the server's own host: how the record and the host's claim change at each step.

The record and the claim (``hosts/<host>/usage``) always change together, in one transaction
(``with_claim``), so a server's size and what its host holds for it never disagree:

- start: ``record.resize`` keeps the old flavor and resources, the server takes the new ones, and
  the claim grows to the larger CPUs and RAM of both and both disks (the host keeps the old disk
  for a revert; ``claims.resize_hold``), RESOURCE_EXHAUSTED, changing nothing, when the host has
  no room for that.
- the compute resizes (VERIFY_RESIZE); the user confirms or reverts. A revert swaps the old size
  back into the server as it starts (``start_revert``), and ``record.resize`` then holds the new
  one (what a failed revert goes back to), so no client ever sees a reverted server with the new
  flavor.
- ``settle_claim``, once the compute confirmed or reverted, is the same for both: the claim becomes the
  server's resources and ``record.resize`` goes. Recovery does the same for a record whose
  compute finished but whose api died before settling (``needs_settling``).

The functions that take a record change it in place; they are pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.api.flows import actions
from services.api.flows.request_spec import resources_of
from services.api.quotas import quota
from services.core import claims, instances, keys, retry
from services.core.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, Unavailable
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import flavors_pb2, servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
# (record, usage of its host, capabilities of its host or None) -> False to write nothing.
ClaimChange = Callable[[state_pb2.InstanceRecord, state_pb2.HostUsage, state_pb2.HostCapabilities | None], bool | None]


def start_resize(
    record: state_pb2.InstanceRecord, usage: state_pb2.HostUsage, caps: state_pb2.HostCapabilities | None,
    flavor: flavors_pb2.Flavor,
) -> None:  # fmt: skip
    server = record.server
    actions.begin("resize", server)
    if record.HasField("resize"):
        raise FailedPrecondition(f"server {server.id}: its previous resize is still being settled; try again")
    if flavor.id == server.flavor_id:
        raise InvalidArgument([("flavor_id", f"server {server.id} has flavor {flavor.name!r} already")])
    if flavor.disk_gb < server.resources.disk_gb:
        why = f"flavor {flavor.name!r} has a {flavor.disk_gb} GB disk, smaller than the server's "
        raise InvalidArgument([("flavor_id", f"{why}{server.resources.disk_gb} GB; a disk cannot shrink")])
    new = resources_of(flavor)
    held = claims.resize_hold(server.resources, new)
    check_room(server, usage, caps, held)
    record.resize.CopyFrom(state_pb2.ResizeRecord(old_flavor_id=server.flavor_id, old_resources=server.resources))
    server.flavor_id = flavor.id
    server.resources.CopyFrom(new)
    if server.id not in usage.claims:  # a claim lost somehow: hold the resize anyway
        usage.claims[server.id].CopyFrom(
            state_pb2.Claim(instance_id=server.id, project_id=server.project_id, created_at=instances.now())
        )
    usage.claims[server.id].CopyFrom(claims.sized(usage.claims[server.id], held, flavor.id))


def check_room(
    server: servers_pb2.Server, usage: state_pb2.HostUsage, caps: state_pb2.HostCapabilities | None,
    held: servers_pb2.ServerResources,
) -> None:  # fmt: skip
    if caps is None:
        raise Unavailable(f"the compute of {server.host} is down; cannot resize there", reason="COMPUTE_DOWN")
    short = claims.shortfall(caps, usage, server.id, held)
    if short:
        raise ResourceExhausted(
            f"host {server.host} has no room to hold both sizes of server {server.id} until the resize is "
            f"confirmed (short of {', '.join(short)})",
            reason="HOST_FULL", metadata={"host": server.host, "resources": ",".join(short)},
        )  # fmt: skip


def swap_sizes(record: state_pb2.InstanceRecord) -> None:
    """Exchanges the server's flavor and resources with those kept in ``record.resize``."""
    server, kept = record.server, record.resize
    flavor_id, resources = server.flavor_id, servers_pb2.ServerResources()
    resources.CopyFrom(server.resources)
    server.flavor_id = kept.old_flavor_id
    server.resources.CopyFrom(kept.old_resources)
    kept.old_flavor_id = flavor_id
    kept.old_resources.CopyFrom(resources)


def start_confirm(record: state_pb2.InstanceRecord) -> None:
    _require_resize("confirm-resize", record)
    actions.begin("confirm-resize", record.server)


def start_revert(record: state_pb2.InstanceRecord) -> None:
    _require_resize("revert-resize", record)
    actions.begin("revert-resize", record.server)
    swap_sizes(record)


def _require_resize(name: str, record: state_pb2.InstanceRecord) -> None:
    if not record.HasField("resize"):
        raise actions.refusal(name, record.server, " after a resize")


def settle_claim(
    record: state_pb2.InstanceRecord, usage: state_pb2.HostUsage, _caps: state_pb2.HostCapabilities | None = None
) -> bool | None:
    """After the compute confirmed or reverted: the claim is the server's size; the resize is over.
    Changes nothing unless ``needs_settling``."""
    if not needs_settling(record):
        return False
    _claim_is_the_server(record, usage)
    return None


def undo(
    record: state_pb2.InstanceRecord, usage: state_pb2.HostUsage, _caps: state_pb2.HostCapabilities | None = None
) -> bool | None:
    """After the compute failed to resize: the old size back in the server and the claim."""
    if not record.HasField("resize") or record.server.vm_state == V.VM_STATE_RESIZED:
        return False  # nothing to undo, or the compute did resize (and only its reply was lost)
    swap_sizes(record)
    _claim_is_the_server(record, usage)
    return None


def _claim_is_the_server(record: state_pb2.InstanceRecord, usage: state_pb2.HostUsage) -> None:
    server = record.server
    if server.id in usage.claims:
        usage.claims[server.id].CopyFrom(claims.sized(usage.claims[server.id], server.resources, server.flavor_id))
    record.ClearField("resize")


def needs_settling(record: state_pb2.InstanceRecord) -> bool:
    """The compute confirmed or reverted (the server is no longer RESIZED, and no resize is being
    started) but the claim still holds both sizes: the api settles it next, or did not before it
    stopped (recovery does then)."""
    server = record.server
    return (
        record.HasField("resize")
        and server.vm_state != V.VM_STATE_RESIZED
        and server.task_state != T.TASK_STATE_RESIZE_PREP
    )


async def with_claim(
    store: Store, instance_id: str, change: ClaimChange, ledger: quota.Quotas | None = None,
    also: Sequence[tuple[str, bytes | None, int]] = (),
) -> state_pb2.InstanceRecord:  # fmt: skip
    """Applies ``change`` to the record and its host's usage, and writes both in one transaction,
    each compared with the revision read, with the project's quota usage following the server's
    charge (``quota.instance_charge``: the larger size of each resource while a resize is not
    settled), and the writes ``also`` (the action's record); retried on a lost race. Returns the
    record as stored. A change that grows the charge (starting a resize) needs ``ledger`` for the
    limits; settling or undoing one only gives back."""

    async def attempt() -> state_pb2.InstanceRecord | retry.Again:
        record, revision = await instances.get(store, instance_id)
        host = record.server.host
        if not host:  # ``change`` refuses as it would anywhere (e.g. not ACTIVE yet), or has nothing to do
            if change(record, state_pb2.HostUsage(), None) is False:
                return record
            raise FailedPrecondition(f"server {instance_id} has no host", reason="NO_HOST")
        usage, usage_revision = await claims.read_usage(store, host)
        caps = await claims.read_capabilities(store, host)
        charged = quota.instance_charge(record)
        if change(record, usage, caps) is False:
            return record
        instances.stamp(record)
        delta = quota.difference(quota.instance_charge(record), charged)
        project_id = record.server.project_id
        charge = await (ledger.charge(project_id, delta) if ledger else quota.release(store, project_id, delta))
        writes = [
            (keys.instance(instance_id), record.SerializeToString(), revision),
            (keys.host_usage(host), usage.SerializeToString(), usage_revision),
            *charge.writes,
            *also,
        ]
        return record if await store.swap_many(writes) else retry.AGAIN

    return await retry.until_done(attempt, what=f"server {instance_id} or its host")
