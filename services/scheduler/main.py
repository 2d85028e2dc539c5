"""Wiring for the scheduler process: settings -> options (and their file), manager and gRPC service."""

from __future__ import annotations

from services.core.etcd import Store
from services.core.runner import ServiceSpec
from services.scheduler.manager import SchedulerManager
from services.scheduler.options import OptionsWatcher
from services.scheduler.servicer import SchedulerServicer
from services.scheduler.settings import SchedulerSettings
from stratus.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

SERVICE_NAME = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name


def build(settings: SchedulerSettings, store: Store) -> tuple[SchedulerManager, ServiceSpec]:
    """Raises ValueError naming any unknown filter or weigher, a bad option value or a bad options
    file, before anything starts."""
    options = OptionsWatcher(settings.option_values(), settings.options_file, interval_s=settings.options_check_s)
    manager = SchedulerManager(store, options=options, alternates=settings.alternates)
    spec = ServiceSpec(
        binary="scheduler",
        servicers=[(scheduler_pb2_grpc.add_SchedulerServicer_to_server, SchedulerServicer(manager))],
        service_names=[SERVICE_NAME],
    )
    return manager, spec
