"""The api process: wires the managers, the auth interceptor and the public services."""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf import descriptor_pool

from services.api.admin.aggregates import AggregatesManager
from services.api.admin.claim_audit import ClaimAudit
from services.api.admin.handlers import AggregatesServicer, HostsServicer, PlacementServicer, ServicesServicer
from services.api.admin.hosts import AdminManager
from services.api.admin.placement import PlacementManager
from services.api.backfill import indexes as backfill_indexes
from services.api.flavors.handlers import FlavorsServicer
from services.api.flavors.manager import FlavorsManager
from services.api.flows.base import Limits
from services.api.flows.orchestrator import Orchestrator
from services.api.flows.owners import FlowOwners
from services.api.flows.record_events import RecordEvents
from services.api.flows.request_spec import SpecResolver
from services.api.flows.tasks import InstanceTasks
from services.api.identity.auth import BearerAuthenticator
from services.api.identity.handlers import KeypairsServicer, TokensServicer
from services.api.identity.keypairs import KeypairsManager
from services.api.identity.policy import Policy, PolicyError
from services.api.identity.tokens import IssuedTokens
from services.api.images.files import ImageFiles
from services.api.images.handlers import ImagesServicer, ImageStoreServicer
from services.api.images.manager import ImagesManager
from services.api.images.store import ImageStoreManager
from services.api.peers import Peers
from services.api.quotas.handlers import QuotasServicer
from services.api.quotas.quota import Quotas
from services.api.quotas.sets import QuotaSetsManager
from services.api.server_groups.handlers import ServerGroupsServicer
from services.api.server_groups.manager import ServerGroupsManager
from services.api.servers.handlers import ServersServicer
from services.api.servers.manager import ServersManager
from services.api.settings import ApiSettings
from services.core import context
from services.core.channels import ChannelPool, ServiceDirectory
from services.core.etcd import Store
from services.core.runner import ServiceSpec
from services.core.tokens import TokenFile
from stratus.imagestore.v1 import imagestore_pb2, imagestore_pb2_grpc
from stratus.v1 import (
    aggregates_pb2,
    aggregates_pb2_grpc,
    flavors_pb2,
    flavors_pb2_grpc,
    hosts_pb2,
    hosts_pb2_grpc,
    images_pb2,
    images_pb2_grpc,
    keypairs_pb2,
    keypairs_pb2_grpc,
    placement_pb2,
    placement_pb2_grpc,
    quotas_pb2,
    quotas_pb2_grpc,
    servergroups_pb2,
    servergroups_pb2_grpc,
    servers_pb2,
    servers_pb2_grpc,
    services_pb2,
    services_pb2_grpc,
    tokens_pb2,
    tokens_pb2_grpc,
)

log = logging.getLogger(__name__)


class ApiManager:
    def __init__(self, settings: ApiSettings, store: Store) -> None:
        self.settings = settings
        self._store = store
        self.directory = ServiceDirectory(store)
        self.channels = ChannelPool(settings.internal_tls())
        self.record_events = RecordEvents(store)
        self.owners = FlowOwners(store, InstanceTasks(), settings.host, settings.lease_ttl_s,
                                 settings.flow_scan_interval_s, self.record_events)  # fmt: skip
        peers = Peers(self.directory, self.channels)
        self.flavors = FlavorsManager(store)
        self.quotas = Quotas(store, settings.quota.model_dump())
        self.quota_sets = QuotaSetsManager(store, self.quotas)
        image_files = ImageFiles(settings.images_path())
        self.images = ImagesManager(store, image_files, self.quotas, settings.max_image_bytes, settings.lease_ttl_s)
        self.image_store = ImageStoreManager(store, self.images)
        self.groups = ServerGroupsManager(store, self.quotas)
        self.aggregates = AggregatesManager(store)
        self.keypairs = KeypairsManager(store, self.quotas)
        specs = SpecResolver(store, self.flavors, self.images, self.groups)
        limits = Limits(settings.max_build_attempts, settings.build_timeout_s, settings.snapshot_timeout_s,
                        settings.flow_deadline_s, settings.compute_down_grace_s)  # fmt: skip
        flows = Orchestrator(store, peers, specs, self.images, limits, self.record_events)
        self.servers = ServersManager(store, specs, self.groups, flows, self.owners, self.quotas)
        self.placement = PlacementManager(specs, peers)
        self.admin = AdminManager(store, peers)
        self.tokens = IssuedTokens(store, settings.token_ttl_min_s)
        self.claim_audit = ClaimAudit(store)

    async def start(self) -> None:
        await self.directory.start()
        await self.record_events.start()
        await self.tokens.start()
        with context.bound(context.SYSTEM):  # no caller: the stack seeds and resumes on its own
            await backfill_indexes(self._store)  # before the seed, which looks for 'tiny' by name
            if self.settings.seed:
                await self.flavors.seed()
                await self.images.seed(self.settings.seed_image_file)
            self.images.start_sweeping(self.settings.image_sweep_interval_s)
            await self.owners.start()  # takes the unfinished flows no live replica drives
        self.claim_audit.start(self.settings.claim_audit_interval_s)

    async def stop(self) -> None:
        await self.claim_audit.stop()
        await self.owners.stop(self.settings.drain_s)
        await self.images.stop_sweeping()
        await self.tokens.stop()
        await self.record_events.stop()
        await self.directory.stop()
        await self.channels.close()

    def lease_records(self) -> dict[str, bytes]:
        return {}


def load_policy(settings: ApiSettings, services: list[str]) -> Policy:
    """The shipped policy with the operator's rules; exits, naming the problem, when a served method
    has no rule or a rule is unusable."""
    try:
        policy = Policy.load(settings.policy_file)
        policy.check_served(descriptor_pool.Default().FindServiceByName(name) for name in services)
    except PolicyError as exc:
        log.error("api refuses to start: %s", exc)
        raise SystemExit(f"error: api refuses to start: {exc}") from exc
    return policy


def build(settings: ApiSettings, store: Store) -> tuple[ApiManager, ServiceSpec]:
    manager = ApiManager(settings, store)
    servicers: list[tuple[Any, Any]] = [
        (servers_pb2_grpc.add_ServersServicer_to_server, ServersServicer(manager.servers)),
        (flavors_pb2_grpc.add_FlavorsServicer_to_server, FlavorsServicer(manager.flavors)),
        (images_pb2_grpc.add_ImagesServicer_to_server, ImagesServicer(manager.images)),
        (services_pb2_grpc.add_ServicesServicer_to_server, ServicesServicer(manager.admin)),
        (hosts_pb2_grpc.add_HostsServicer_to_server, HostsServicer(manager.admin)),
        (servergroups_pb2_grpc.add_ServerGroupsServicer_to_server, ServerGroupsServicer(manager.groups)),
        (aggregates_pb2_grpc.add_AggregatesServicer_to_server, AggregatesServicer(manager.aggregates)),
        (placement_pb2_grpc.add_PlacementServicer_to_server, PlacementServicer(manager.placement)),
        (quotas_pb2_grpc.add_QuotasServicer_to_server, QuotasServicer(manager.quota_sets)),
        (imagestore_pb2_grpc.add_ImageStoreServicer_to_server, ImageStoreServicer(manager.image_store)),
        (keypairs_pb2_grpc.add_KeypairsServicer_to_server, KeypairsServicer(manager.keypairs)),
        (tokens_pb2_grpc.add_TokensServicer_to_server, TokensServicer(manager.tokens)),
    ]
    names = [
        servers_pb2.DESCRIPTOR.services_by_name["Servers"].full_name,
        flavors_pb2.DESCRIPTOR.services_by_name["Flavors"].full_name,
        images_pb2.DESCRIPTOR.services_by_name["Images"].full_name,
        services_pb2.DESCRIPTOR.services_by_name["Services"].full_name,
        hosts_pb2.DESCRIPTOR.services_by_name["Hosts"].full_name,
        servergroups_pb2.DESCRIPTOR.services_by_name["ServerGroups"].full_name,
        aggregates_pb2.DESCRIPTOR.services_by_name["Aggregates"].full_name,
        placement_pb2.DESCRIPTOR.services_by_name["Placement"].full_name,
        quotas_pb2.DESCRIPTOR.services_by_name["Quotas"].full_name,
        imagestore_pb2.DESCRIPTOR.services_by_name["ImageStore"].full_name,
        keypairs_pb2.DESCRIPTOR.services_by_name["Keypairs"].full_name,
        tokens_pb2.DESCRIPTOR.services_by_name["Tokens"].full_name,
    ]
    auth = BearerAuthenticator(load_policy(settings, names), TokenFile(settings.tokens_path()), manager.tokens)
    return manager, ServiceSpec(binary="api", servicers=servicers, service_names=names, authenticate=auth)
