"""Wiring for the scheduler process: settings -> filters, weighers, manager and gRPC service."""

from __future__ import annotations

from services.core.etcd import Store
from services.core.runner import ServiceSpec
from services.scheduler.filters import build_filters
from services.scheduler.manager import SchedulerManager
from services.scheduler.servicer import SchedulerServicer
from services.scheduler.settings import SchedulerSettings
from services.scheduler.weighers import build_weighers
from stratus.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

SERVICE_NAME = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name


def build(settings: SchedulerSettings, store: Store) -> tuple[SchedulerManager, ServiceSpec]:
    """Raises ValueError naming any unknown filter or weigher, before anything starts."""
    manager = SchedulerManager(
        store,
        build_filters(settings.enabled_filters),
        build_weighers(settings.weighers, settings.weight_multipliers),
        alternates=settings.alternates,
    )
    spec = ServiceSpec(
        binary="scheduler",
        servicers=[(scheduler_pb2_grpc.add_SchedulerServicer_to_server, SchedulerServicer(manager))],
        service_names=[SERVICE_NAME],
    )
    return manager, spec
