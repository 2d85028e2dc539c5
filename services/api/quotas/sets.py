"""The Quotas API: a project's limits and usage (GetQuotaSet), an admin's overrides (UpdateQuotaSet)."""

from __future__ import annotations

from services.api.quotas import quota
from services.api.quotas.quota import RESOURCES, Quotas
from services.api.server_groups.manager import project_groups
from services.api.settings import AMOUNT_MAX, COUNT_MAX
from services.api.validation import Violations
from services.core import context, keys, retry
from services.core.errors import PermissionDenied, shorten
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import quotas_pb2

AMOUNTS = frozenset({"cores", "ram_mb", "image_bytes"})


def limit_max(resource: str) -> int:
    return AMOUNT_MAX if resource in AMOUNTS else COUNT_MAX


def validate_update(req: quotas_pb2.UpdateQuotaSetRequest) -> None:
    v = Violations()
    v.required("project_id", req.project_id)
    present = [r for r in RESOURCES if req.quota_set.HasField(r)]  # type: ignore[arg-type]
    if not present:
        v.add("quota_set", f"set at least one of {', '.join(RESOURCES)}")
    for resource in present:
        v.int_range(f"quota_set.{resource}", getattr(req.quota_set, resource), quota.UNLIMITED, limit_max(resource))
    v.raise_if_any()


class QuotaSetsManager:
    def __init__(self, store: Store, ledger: Quotas) -> None:
        self._store = store
        self._ledger = ledger

    async def get(self, project_id: str) -> quotas_pb2.GetQuotaSetResponse:
        """The caller's own project (``project_id`` empty or its own), or any project for an admin;
        another project's is PERMISSION_DENIED (its existence is no secret: any id has a quota)."""
        ctx = context.current()
        project_id = project_id or ctx.project_id
        if project_id != ctx.project_id and not ctx.is_admin:
            raise PermissionDenied(f"the quotas of project {shorten(project_id)!r} are its own and the admins'",
                                   reason="ADMIN_REQUIRED")  # fmt: skip
        limits, usage = await self._read(project_id)
        return quotas_pb2.GetQuotaSetResponse(project_id=project_id, limits=limits, usage=usage)

    async def update(self, req: quotas_pb2.UpdateQuotaSetRequest) -> quotas_pb2.UpdateQuotaSetResponse:
        if not context.current().is_admin:
            raise PermissionDenied("setting quotas needs the admin role", reason="ADMIN_REQUIRED")
        validate_update(req)
        key = keys.quota_limits(req.project_id)

        def merge(overrides: quotas_pb2.QuotaSet) -> None:
            overrides.MergeFrom(req.quota_set)

        async def write(overrides: quotas_pb2.QuotaSet, revision: int) -> bool:
            return await self._store.swap(key, overrides.SerializeToString(), revision)

        what = f"the quota set of project {shorten(req.project_id)!r}"
        await retry.swap(lambda: quota.read_set(self._store, key), merge, write, what=what)
        limits, usage = await self._read(req.project_id)
        return quotas_pb2.UpdateQuotaSetResponse(project_id=req.project_id, limits=limits, usage=usage)

    async def _read(self, project_id: str) -> tuple[quotas_pb2.QuotaSet, quotas_pb2.QuotaSet]:
        """Limits and usage; the members' usage is the project's largest server group's."""
        limits = await self._ledger.limits(project_id)
        usage = await self._ledger.usage(project_id)
        usage.server_group_members = await self._largest_group(project_id)
        return limits, usage

    async def _largest_group(self, project_id: str) -> int:
        """The most members any of the project's groups has (its groups read through their index)."""
        largest = 0
        async for kv in project_groups(self._store, project_id):
            largest = max(largest, len(state_pb2.ServerGroupRecord.FromString(kv.value).group.members))
        return largest
