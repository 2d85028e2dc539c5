"""Wiring for the servicegroup process: settings -> manager and gRPC service."""

from __future__ import annotations

from services.core.etcd import Store
from services.core.runner import ServiceSpec
from services.servicegroup.manager import ServiceGroupManager
from services.servicegroup.servicer import ServiceGroupServicer
from services.servicegroup.settings import ServiceGroupSettings
from stratus.servicegroup.v1 import servicegroup_pb2, servicegroup_pb2_grpc

SERVICE_NAME = servicegroup_pb2.DESCRIPTOR.services_by_name["ServiceGroup"].full_name


def build(settings: ServiceGroupSettings, store: Store) -> tuple[ServiceGroupManager, ServiceSpec]:
    manager = ServiceGroupManager(store)
    spec = ServiceSpec(
        binary="servicegroup",
        servicers=[(servicegroup_pb2_grpc.add_ServiceGroupServicer_to_server, ServiceGroupServicer(manager))],
        service_names=[SERVICE_NAME],
    )
    return manager, spec
