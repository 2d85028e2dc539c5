"""etcd's alarms as ListServices shows them (``store_alarms``): NOSPACE means writes are refused."""

from __future__ import annotations

import logging

from services.core.etcd import Store, is_store_outage
from services.core.etcd_maint import Alarm, Member, describe, member_named
from stratus.v1 import services_pb2

log = logging.getLogger(__name__)


def to_proto(alarm: Alarm, members: list[Member]) -> services_pb2.StoreAlarm:
    member = member_named(alarm.member_id, members)
    return services_pb2.StoreAlarm(
        member=member.name if member else format(alarm.member_id, "x"),
        endpoint=member.client_urls[0] if member and member.client_urls else "",
        alarm=alarm.kind,
        message=describe(alarm, members),
    )


async def store_alarms(store: Store) -> list[services_pb2.StoreAlarm]:
    """The active alarms; none when etcd cannot say now (the services are listed all the same)."""
    try:
        alarms = await store.alarms()
        members = await store.members() if alarms else []
    except Exception as exc:
        if not is_store_outage(exc):
            raise
        log.warning("cannot read etcd's alarms now (%s)", type(exc).__name__)
        return []
    return [to_proto(alarm, members) for alarm in alarms]
