"""The etcd key layout: every key Stratus writes, in one place.

All keys live under one prefix (default ``/stratus/``), which ``Store`` adds; the functions here
return the part after it. Values are protobuf records from ``protos/stratus/state/v1/state.proto``
or the public ``stratus.v1`` messages.

=====================================  ===========================  ==========================
key                                    value                        lifetime
=====================================  ===========================  ==========================
services/<binary>/<host>               state.ServiceRecord          the process's lease
services_admin/<binary>/<host>         state.ServiceAdmin           durable (operator)
services_seen/<binary>/<host>          state.ServiceSeen            durable (servicegroup)
hosts/<host>/capabilities              state.HostCapabilities       the compute's lease
hosts/<host>/usage                     state.HostUsage              durable, compare-and-swap
hosts/<host>/stats                     state.HostStats              the compute's lease
instances/<id>                         state.InstanceRecord         durable, compare-and-swap
flow_owners/<id>                       '<replica>:<lease hex>'      the owning api replica's lease
requests/<project>/<request_id>        state.RequestIndex           durable, with the instance
server_actions/<instance>/<action>     stratus.v1.ServerAction      durable while the instance
                                                                    is; then a retention lease
flavors/<id>                           stratus.v1.Flavor            durable
flavor_names/<name>                    the flavor id (utf-8)        durable, with the flavor
images/<id>                            stratus.v1.Image             durable (bytes on api disk);
                                                                    an upload's lease while SAVING
image_members/<image>/<project>        stratus.v1.ImageMember       durable, with the image
aggregates/<id>                        stratus.v1.Aggregate         durable
aggregate_names/<name>                 the aggregate id (utf-8)     durable, with the aggregate
server_groups/<id>                     state.ServerGroupRecord      durable, compare-and-swap
keypairs/<project>/<user>/<name>       stratus.v1.Keypair           durable
quotas/<project>                       stratus.v1.QuotaSet          durable (the admin's limits)
quota_usage/<project>                  stratus.v1.QuotaSet          durable, compare-and-swap in
                                                                    the resource's transaction
deployment                             a random id (utf-8)          durable, written once
tokens/<id>                            state.TokenRecord            a lease: expiry + 1 day
seeding/<name>                         the seeding process (utf-8)  its lease, while it seeds
=====================================  ===========================  ==========================
"""

from __future__ import annotations

SERVICES = "services/"
SERVICES_ADMIN = "services_admin/"
SERVICES_SEEN = "services_seen/"
HOSTS = "hosts/"
INSTANCES = "instances/"
FLOW_OWNERS = "flow_owners/"
REQUESTS = "requests/"
SERVER_ACTIONS = "server_actions/"
FLAVORS = "flavors/"
FLAVOR_NAMES = "flavor_names/"
IMAGES = "images/"
IMAGE_MEMBERS = "image_members/"
AGGREGATES = "aggregates/"
AGGREGATE_NAMES = "aggregate_names/"
SERVER_GROUPS = "server_groups/"
KEYPAIRS = "keypairs/"
QUOTAS = "quotas/"
QUOTA_USAGE = "quota_usage/"
TOKENS = "tokens/"
SEEDING = "seeding/"
# Names this deployment (this etcd and prefix); the libvirt driver tags its domains with it, so
# two stacks sharing one libvirtd never touch each other's domains.
DEPLOYMENT = "deployment"

CAPABILITIES = "capabilities"
USAGE = "usage"
STATS = "stats"


def service(binary: str, host: str) -> str:
    return f"{SERVICES}{binary}/{host}"


def service_admin(binary: str, host: str) -> str:
    return f"{SERVICES_ADMIN}{binary}/{host}"


def service_seen(binary: str, host: str) -> str:
    return f"{SERVICES_SEEN}{binary}/{host}"


def split_service(key: str) -> tuple[str, str]:
    """``services/compute/c1`` (or any of the services_* prefixes) -> (``compute``, ``c1``)."""
    _, binary, host = key.split("/", 2)
    return binary, host


def host_capabilities(host: str) -> str:
    return f"{HOSTS}{host}/{CAPABILITIES}"


def host_usage(host: str) -> str:
    return f"{HOSTS}{host}/{USAGE}"


def host_stats(host: str) -> str:
    return f"{HOSTS}{host}/{STATS}"


def split_host(key: str) -> tuple[str, str]:
    """``hosts/c1/usage`` -> (``c1``, ``usage``)."""
    _, host, kind = key.split("/", 2)
    return host, kind


def instance(instance_id: str) -> str:
    return f"{INSTANCES}{instance_id}"


def flow_owner(instance_id: str) -> str:
    """Which api replica drives the server's unfinished flow (on that replica's lease)."""
    return f"{FLOW_OWNERS}{instance_id}"


def request(project_id: str, request_id: str) -> str:
    return f"{REQUESTS}{project_id}/{request_id}"


def server_actions(instance_id: str) -> str:
    """The prefix of one server's actions; their ids (UUIDv7) sort oldest first."""
    return f"{SERVER_ACTIONS}{instance_id}/"


def server_action(instance_id: str, action_id: str) -> str:
    return f"{server_actions(instance_id)}{action_id}"


def flavor(flavor_id: str) -> str:
    return f"{FLAVORS}{flavor_id}"


def flavor_name(name: str) -> str:
    return f"{FLAVOR_NAMES}{name}"


def image(image_id: str) -> str:
    return f"{IMAGES}{image_id}"


def image_members(image_id: str) -> str:
    """The prefix of an image's members."""
    return f"{IMAGE_MEMBERS}{image_id}/"


def image_member(image_id: str, project_id: str) -> str:
    return f"{IMAGE_MEMBERS}{image_id}/{project_id}"


def split_image_member(key: str) -> tuple[str, str]:
    """``image_members/i1/p1`` -> (``i1``, ``p1``)."""
    _, image_id, project_id = key.split("/", 2)
    return image_id, project_id


def aggregate(aggregate_id: str) -> str:
    return f"{AGGREGATES}{aggregate_id}"


def aggregate_name(name: str) -> str:
    return f"{AGGREGATE_NAMES}{name}"


def server_group(group_id: str) -> str:
    return f"{SERVER_GROUPS}{group_id}"


def keypairs_of(project_id: str, user_id: str) -> str:
    """The prefix of one user's keypairs in one project."""
    return f"{KEYPAIRS}{project_id}/{user_id}/"


def keypair(project_id: str, user_id: str, name: str) -> str:
    return f"{keypairs_of(project_id, user_id)}{name}"


def quota_limits(project_id: str) -> str:
    return f"{QUOTAS}{project_id}"


def quota_usage(project_id: str) -> str:
    return f"{QUOTA_USAGE}{project_id}"


def token(token_id: str) -> str:
    return f"{TOKENS}{token_id}"


def seeding(name: str) -> str:
    return f"{SEEDING}{name}"
