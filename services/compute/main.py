"""Wires the compute process: image service, driver, manager, gRPC servicer. ``stratus compute``
runs ``run_process(settings, build)``."""

from __future__ import annotations

from services.compute.drivers.registry import load_driver
from services.compute.images import ApiImageService
from services.compute.manager import ComputeManager
from services.compute.servicer import ComputeServicer
from services.compute.settings import ComputeSettings
from services.core.channels import ChannelPool, ServiceDirectory
from services.core.etcd import Store
from services.core.runner import ServiceSpec
from stratus.compute.v1 import compute_pb2, compute_pb2_grpc

BINARY = "compute"


def build(settings: ComputeSettings, store: Store) -> tuple[ComputeManager, ServiceSpec]:
    """The manager and service spec for ``serve``; ValueError for an unknown driver."""
    channels = ChannelPool(settings.internal_tls())
    images = ApiImageService(ServiceDirectory(store, "api"), channels, settings.service_token_path())
    manager = ComputeManager(settings, store, load_driver(settings, images), helpers=(images,))
    spec = ServiceSpec(
        binary=BINARY,
        servicers=[(compute_pb2_grpc.add_ComputeServicer_to_server, ComputeServicer(manager))],
        service_names=[compute_pb2.DESCRIPTOR.services_by_name["Compute"].full_name],
        on_registered=manager.stats.attach,
    )
    return manager, spec
