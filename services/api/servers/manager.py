"""The Servers API's business logic: validate, write the record, hand the rest to the orchestrator."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject

from services.api.flows import action_log, actions, resize_claims, snapshot_start
from services.api.flows.actions import POWER_ACTIONS
from services.api.flows.orchestrator import Orchestrator
from services.api.flows.owners import FlowRunner
from services.api.flows.request_spec import SpecResolver, resources_of
from services.api.identity import keypairs
from services.api.quotas import quota
from services.api.quotas.quota import Quotas
from services.api.server_groups.manager import ServerGroupsManager
from services.api.servers import list_filter
from services.api.servers.listing import list_servers
from services.api.servers.watch import watch_servers
from services.api.validation import ID_CHARS, NAME_MAX, REQUEST_ID, USER_DATA_MAX, Violations, page_size
from services.core import context, instances, keys, retry
from services.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    shorten,
)
from services.core.etcd import Store
from services.core.ids import new_id
from services.core.message_limits import CREATE_SERVER_MAX_BYTES
from stratus.state.v1 import state_pb2
from stratus.v1 import flavors_pb2, images_pb2, servers_pb2

V = servers_pb2.VmState
T = servers_pb2.TaskState
E = servers_pb2.ServerEventType
CONSOLE_MAX_LINES = 10000
Flow = Coroutine[Any, Any, None]


def validate_server(v: Violations, s: servers_pb2.Server, require_name: bool = True) -> None:
    """The fields CreateServer (and ExplainPlacement) read from ``server``."""
    if require_name or s.name:
        v.name("server.name", s.name)
    v.required("server.flavor_id", s.flavor_id)
    v.required("server.image_id", s.image_id)
    v.mapping("server.metadata", s.metadata)
    v.mapping("server.scheduler_hints", s.scheduler_hints)
    v.pattern("server.server_group_id", s.server_group_id, ID_CHARS, "a server group id")
    v.text("server.availability_zone", s.availability_zone, NAME_MAX)
    if s.key_name:
        keypairs.check_name(v, "server.key_name", s.key_name)
    if len(s.user_data) > USER_DATA_MAX:
        v.add("server.user_data", f"must be at most {USER_DATA_MAX} bytes, got {len(s.user_data)}")


def validate_create(req: servers_pb2.CreateServerRequest) -> None:
    v = Violations()
    if not req.HasField("server"):
        v.add("server", "is required")
    validate_server(v, req.server)
    size = req.ByteSize()
    if size > CREATE_SERVER_MAX_BYTES:
        v.add("server", f"is {size} bytes encoded; a create may be at most {CREATE_SERVER_MAX_BYTES} "
                        "(user_data, metadata and scheduler_hints together)")  # fmt: skip
    v.pattern("request_id", req.request_id, REQUEST_ID, "1 to 128 letters, digits, '.', '_', ':' or '-'")
    v.raise_if_any()


def body_digest(req: servers_pb2.CreateServerRequest) -> str:
    """The hex sha256 of a create request's body (its server, deterministically encoded: map
    order does not matter), kept with its request_id so a reuse with another body is told apart."""
    return hashlib.sha256(req.server.SerializeToString(deterministic=True)).hexdigest()


class ServersManager:
    def __init__(
        self, store: Store, specs: SpecResolver, groups: ServerGroupsManager, flows: Orchestrator,
        owners: FlowRunner, ledger: Quotas | None = None,
    ) -> None:  # fmt: skip
        self._store = store
        self._quotas = ledger or Quotas(store)
        self._specs = specs
        self._groups = groups
        self._flows = flows
        self._owners = owners
        self.tasks = owners.tasks
        owners.bind(self)

    def _deadline_s(self, name: str) -> float | None:
        """How long the action ``name`` may take in all (its ``ServerAction.deadline``)."""
        return self._flows.limits.deadline_s(action_log.kind_of(name))

    # ---- create -------------------------------------------------------------------------
    async def create(self, req: servers_pb2.CreateServerRequest) -> servers_pb2.Server:
        validate_create(req)
        ctx = context.current()
        digest = body_digest(req)
        if req.request_id:
            existing = await self._by_request(ctx.project_id, req.request_id, digest)
            if existing is not None:
                return existing
        resolved = await self._specs.resolve(req.server, ctx.project_id)
        key = await keypairs.instance_key(self._store, req.server.key_name) if req.server.key_name else None
        record = self._new_record(req, resolved.flavor, resolved.image.id)
        if key is not None:
            record.key.CopyFrom(key)
        whole = state_pb2.InstanceRecord()
        whole.CopyFrom(record)
        details = instances.set_apart(record)
        trace.get_current_span().set_attribute("stratus.instance_id", record.server.id)
        if not await self._write_new(record, details, ctx.project_id, digest):
            existing = await self._by_request(ctx.project_id, req.request_id, digest)
            if existing is None:
                raise FailedPrecondition("request_id collided with a server being deleted; retry")
            return existing
        await self._owners.kick(record.server.id, ctx.project_id)
        return whole.server

    def _new_record(
        self, req: servers_pb2.CreateServerRequest, flavor: flavors_pb2.Flavor, image_id: str
    ) -> state_pb2.InstanceRecord:
        ctx = context.current()
        src = req.server
        server = servers_pb2.Server(
            id=new_id(), name=src.name, project_id=ctx.project_id, user_id=ctx.user_id,
            flavor_id=flavor.id, image_id=image_id, vm_state=V.VM_STATE_BUILDING,
            task_state=T.TASK_STATE_SCHEDULING, power_state=servers_pb2.PowerState.POWER_STATE_NOSTATE,
            availability_zone=src.availability_zone, metadata=src.metadata, server_group_id=src.server_group_id,
            scheduler_hints=src.scheduler_hints, created_at=instances.now(), resources=resources_of(flavor),
            user_data=src.user_data, key_name=src.key_name,
        )  # fmt: skip
        carrier: dict[str, str] = {}
        inject(carrier)
        record = state_pb2.InstanceRecord(server=server, request_id=req.request_id, trace_context=carrier)
        instances.stamp(record)
        return record

    async def _write_new(
        self, record: state_pb2.InstanceRecord, details: state_pb2.InstanceDetails | None, project_id: str, digest: str
    ) -> bool:
        """Writes the record, its details and indexes, its request index, its group membership and
        its quota charge in one transaction. False when the request_id is taken; a lost race on the
        group record is retried; QuotaExceeded (nothing written) when the project or the group is full."""
        group_id = record.server.server_group_id

        async def attempt() -> bool | retry.Again:
            key = keys.instance(record.server.id)
            compares = [self._store.cmp_absent(key)]
            action = action_log.op_create(self._store, record, self._deadline_s(action_log.CREATE))
            ops = [*instances.create_ops(self._store, record), action]
            if details is not None:
                ops.append(self._store.op_put(keys.instance_details(record.server.id), details.SerializeToString()))
            if record.request_id:
                req_key = keys.request(project_id, record.request_id)
                compares.append(self._store.cmp_absent(req_key))
                index = state_pb2.RequestIndex(instance_id=record.server.id, body_digest=digest)
                ops.append(self._store.op_put(req_key, index.SerializeToString()))
            if group_id:
                group, revision = await self._groups.owned(group_id, project_id, "server.server_group_id")
                await self._quotas.check_members(project_id, len(group.group.members) + 1)
                group.group.members.append(record.server.id)
                compares.append(self._store.cmp_mod(keys.server_group(group_id), revision))
                ops.append(self._store.op_put(keys.server_group(group_id), group.SerializeToString()))
            try:
                if await self._quotas.commit(project_id, quota.instance_charge(record), compares, ops):
                    return True
            except QuotaExceeded:  # a concurrent twin with this request_id may have taken the last unit
                if record.request_id and await self._store.get(keys.request(project_id, record.request_id)):
                    return False
                raise
            taken = record.request_id and await self._store.get(keys.request(project_id, record.request_id))
            return False if taken or not group_id else retry.AGAIN

        return await retry.until_done(attempt, what=f"server group {group_id}")

    async def _by_request(self, project_id: str, request_id: str, digest: str) -> servers_pb2.Server | None:
        """The server an earlier create with this request_id made; AlreadyExists when that
        create carried another body (an index written before digests were kept matches any)."""
        kv = await self._store.get(keys.request(project_id, request_id))
        if kv is None:
            return None
        index = state_pb2.RequestIndex.FromString(kv.value)
        if index.body_digest and index.body_digest != digest:
            raise AlreadyExists(f"request_id {shorten(request_id)!r} was already used with a different request body",
                                reason="REQUEST_ID_REUSED", metadata={"request_id": request_id})  # fmt: skip
        try:
            record, _ = await instances.get(self._store, index.instance_id)
        except NotFound:
            return None
        return (await instances.with_details(self._store, record)).server

    # ---- read ---------------------------------------------------------------------------
    async def get(self, instance_id: str) -> servers_pb2.Server:
        return (await instances.with_details(self._store, await self._visible(instance_id))).server

    async def _visible(self, instance_id: str) -> state_pb2.InstanceRecord:
        if not instance_id:
            raise InvalidArgument([("id", "is required")])
        record, _ = await instances.get(self._store, instance_id)
        ctx = context.current()
        if not ctx.is_admin and record.server.project_id != ctx.project_id:
            raise NotFound("server", instance_id)
        return record

    def _scope(self, all_projects: bool) -> Callable[[servers_pb2.Server], bool]:
        ctx = context.current()
        if all_projects and not ctx.is_admin:
            raise PermissionDenied("all_projects needs the admin role", reason="ADMIN_REQUIRED")
        return (lambda _s: True) if all_projects else (lambda s: s.project_id == ctx.project_id)

    async def list(self, req: servers_pb2.ListServersRequest) -> servers_pb2.ListServersResponse:
        """A page of the caller's project's servers (read through its index), or of every
        project's for an admin who asks."""
        limit = page_size(req.page_size)
        in_scope = self._scope(req.all_projects)
        matches = list_filter.parse(req.filter)
        project = "" if req.all_projects else context.current().project_id
        keep = lambda s: in_scope(s) and matches(s)  # noqa: E731
        return await list_servers(self._store, req.page_token, limit, keep, project)

    # ---- delete and actions ---------------------------------------------------------------
    async def delete(self, instance_id: str) -> servers_pb2.Server:
        await self._visible(instance_id)

        def mark(r: state_pb2.InstanceRecord) -> bool | None:
            if r.server.task_state == T.TASK_STATE_DELETING:
                return False
            r.server.task_state = T.TASK_STATE_DELETING
            return None

        record = await action_log.update(self._store, instance_id, mark, action_log.DELETE)
        await self._owners.kick(instance_id, record.server.project_id)
        return record.server

    async def action(self, instance_id: str, name: str) -> servers_pb2.Server:
        """A power action, or confirming or reverting a resize: the task is set (or the action
        refused) at once, and the flow runs after the reply."""
        await self._visible(instance_id)
        begin = STARTS.get(name) or (lambda r: actions.begin(name, r.server))

        def start(r: state_pb2.InstanceRecord) -> None:
            begin(r)
            r.ClearField("report")  # the compute's last report was about another call

        record = await action_log.update(self._store, instance_id, start, name, self._deadline_s(name))
        await self._owners.kick(instance_id, record.server.project_id)
        return record.server

    async def resize(self, instance_id: str, flavor_ref: str) -> servers_pb2.Server:
        v = Violations()
        v.required("id", instance_id)
        v.required("flavor_id", flavor_ref)
        if len(flavor_ref) > NAME_MAX:
            v.add("flavor_id", f"must be at most {NAME_MAX} characters (a flavor id or name)")
        v.raise_if_any()
        visible = await self._visible(instance_id)
        flavor = await self._specs.flavors.get(flavor_ref, "flavor_id")
        await self._specs.check_image_fits(flavor, visible.server.image_id, "flavor_id")

        def start(r: state_pb2.InstanceRecord, usage: state_pb2.HostUsage, caps: Any) -> None:
            resize_claims.start_resize(r, usage, caps, flavor)
            r.action_id = action.id

        action = action_log.new_action(
            instance_id, "resize", visible.server.project_id, deadline_s=self._deadline_s("resize")
        )
        record = await resize_claims.with_claim(
            self._store, instance_id, start, self._quotas, [action_log.write(action)]
        )
        await self._owners.kick(instance_id, record.server.project_id)
        return record.server

    async def snapshot(self, instance_id: str, image_name: str) -> images_pb2.Image:
        snapshot_start.validate_snapshot(instance_id, image_name)
        server = (await self._visible(instance_id)).server
        source = await self._specs.optional_image(server.image_id)
        image = snapshot_start.snapshot_image(image_name, server, source, server.project_id)
        action = action_log.new_action(
            instance_id, "snapshot", server.project_id, deadline_s=self._deadline_s("snapshot")
        )
        await snapshot_start.begin_snapshot(self._store, instance_id, image, self._quotas, action)
        await self._owners.kick(instance_id, server.project_id)  # its flow copies into the SAVING image
        return image

    async def console_output(self, instance_id: str, lines: int) -> str:
        v = Violations()
        v.required("id", instance_id)
        v.int_range("lines", lines, 0, CONSOLE_MAX_LINES)
        v.raise_if_any()
        server = (await self._visible(instance_id)).server
        if not server.host:
            raise FailedPrecondition(f"server {instance_id} is {actions.describe(server)} and has no host yet, "
                                     "so no console", reason="NO_HOST")  # fmt: skip
        return await self._flows.console_output(server.host, instance_id, lines)

    def _flow(self, name: str, instance_id: str) -> Flow:
        """The flow that carries out ``name`` (from the start, or resumed from its task)."""
        if name in POWER_ACTIONS:
            return self._flows.power(instance_id, name)
        others: dict[str, Callable[[str], Flow]] = {
            "build": self._flows.build,
            "delete": self._flows.delete,
            "settle-resize": self._flows.settle_resize,
            "resize": self._flows.resize,
            "confirm-resize": self._flows.confirm_resize,
            "revert-resize": self._flows.revert_resize,
            "snapshot": self._flows.resume_snapshot,
        }
        return others[name](instance_id)

    async def list_actions(self, req: servers_pb2.ListServerActionsRequest) -> servers_pb2.ListServerActionsResponse:
        """The server's actions, newest first; a deleted server's while they are retained (its
        project's, or an admin's, as the server was)."""
        limit = page_size(req.page_size)
        kvs = await action_log.read(self._store, req.id) if req.id else []  # before the record: see end_orphaned
        found = action_log.listed(kvs)
        try:
            record = await self._visible(req.id)
        except NotFound:
            ctx = context.current()
            if not found or not (ctx.is_admin or found[0].project_id == ctx.project_id):
                raise
        else:
            running = any(a.result == servers_pb2.ServerActionResult.SERVER_ACTION_RESULT_RUNNING for a in found)
            if running and not self.needs_work(record) and await action_log.end_orphaned(self._store, record, (), kvs):
                found = action_log.listed(await action_log.read(self._store, req.id))
        return action_log.page(found, req.id, limit, req.page_token)

    # ---- watch (watch.py) ------------------------------------------------------------
    async def watch(self, req: servers_pb2.WatchServersRequest) -> AsyncIterator[servers_pb2.ServerEvent]:
        in_scope = self._scope(req.all_projects)
        if req.id:  # one server: as GetServer, its project's members and any admin
            ctx = context.current()
            in_scope = lambda s: ctx.is_admin or s.project_id == ctx.project_id  # noqa: E731
        async for event in watch_servers(self._store, req.id, req.revision, in_scope):
            yield event

    # ---- the flows' plans (owners.Plans) -----------------------------------------------
    def needs_work(self, record: state_pb2.InstanceRecord) -> bool:
        return bool(resume_plan(record))

    async def next_flow(self, record: state_pb2.InstanceRecord) -> Flow | None:
        """The first flow the record's plan needs, in the trace of the request that made the server
        when no request's trace is current (a flow taken over from another replica)."""
        plan = resume_plan(record)
        if not plan:
            return None
        flow = self._flow(plan[0], record.server.id)
        if trace.get_current_span().get_span_context().is_valid:
            return flow
        return traced(flow, dict(record.trace_context))

    async def taking_over(self, record: state_pb2.InstanceRecord) -> None:
        """Ends the actions whose flow finished before their replica could say so."""
        await action_log.end_orphaned(self._store, record, resume_plan(record))


async def traced(flow: Flow, carrier: dict[str, str]) -> None:
    token = otel_context.attach(extract(carrier))
    try:
        await flow
    finally:
        otel_context.detach(token)


def resume_plan(record: state_pb2.InstanceRecord) -> list[str]:
    """The flows left to run for a record after an api restart, in order, by name."""
    task = record.server.task_state
    plan = []
    if task in (T.TASK_STATE_SCHEDULING, T.TASK_STATE_SPAWNING):
        plan.append("build")
    elif task == T.TASK_STATE_DELETING:
        plan.append("delete")
    elif task in actions.BY_TASK:
        plan.append(actions.BY_TASK[task])
    if resize_claims.needs_settling(record) and task != T.TASK_STATE_DELETING:
        plan.append("settle-resize")
    return plan


# action -> how it starts in the record, when that is more than ``actions.begin``
STARTS: dict[str, Callable[[state_pb2.InstanceRecord], None]] = {
    "confirm-resize": resize_claims.start_confirm,
    "revert-resize": resize_claims.start_revert,
}
