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
instance_details/<id>                  state.InstanceDetails        written once, with the record
project_instances/<project>/<id>       empty (an index)             with the record
flow_owners/<id>                       '<replica>:<lease hex>'      the owning api replica's lease
requests/<project>/<request_id>        state.RequestIndex           durable, with the instance
server_actions/<instance>/<action>     stratus.v1.ServerAction      durable while the instance
                                                                    is; then a retention lease
flavors/<id>                           stratus.v1.Flavor            durable
flavor_names/<name>                    the flavor id (utf-8)        durable, with the flavor
images/<id>                            stratus.v1.Image             durable (bytes on api disk);
                                                                    an upload's lease while SAVING
image_members/<image>/<project>        stratus.v1.ImageMember       durable, with the image
image_names/<name>/<owner>/<id>        empty (an index)             with the image, its lease too;
                                                                    PUBLIC also as owner '*public'
project_images/<owner>/<id>            empty (an index)             the same (names and projects
                                                                    in index keys: ``quoted``)
project_shared_images/<project>/<id>   empty (an index)             with the image member
saving_snapshots/<server>/<image>      empty (an index)             with a SAVING image that names
                                                                    the server (instance_uuid)
aggregates/<id>                        stratus.v1.Aggregate         durable
aggregate_names/<name>                 the aggregate id (utf-8)     durable, with the aggregate
host_aggregates/<host>/<aggregate>     empty (an index)             with the aggregate's hosts
aggregate_zones                        JSON {zone: [aggregate id]}  durable, compare-and-swap by
                                                                    every change of a zone's hosts
zone_hosts/<zone>/<host>               empty (an index)             the compute's lease, with its
                                                                    capabilities (computes that
                                                                    write none: see api/zones.py)
server_groups/<id>                     state.ServerGroupRecord      durable, compare-and-swap
project_server_groups/<project>/<id>   empty (an index)             with the group
keypairs/<project>/<user>/<name>       stratus.v1.Keypair           durable
quotas/<project>                       stratus.v1.QuotaSet          durable (the admin's limits)
quota_usage/<project>                  stratus.v1.QuotaSet          durable, compare-and-swap in
                                                                    the resource's transaction
deployment                             a random id (utf-8)          durable, written once
tokens/<id>                            state.TokenRecord            a lease: expiry + 1 day
seeding/<name>                         the seeding process (utf-8)  its lease, while it seeds
schema/<name>                          "1"                          durable: a one-time backfill is done
=====================================  ===========================  ==========================
"""

from __future__ import annotations

from urllib.parse import quote, unquote

SERVICES = "services/"
SERVICES_ADMIN = "services_admin/"
SERVICES_SEEN = "services_seen/"
HOSTS = "hosts/"
INSTANCES = "instances/"
INSTANCE_DETAILS = "instance_details/"
PROJECT_INSTANCES = "project_instances/"
FLOW_OWNERS = "flow_owners/"
REQUESTS = "requests/"
SERVER_ACTIONS = "server_actions/"
FLAVORS = "flavors/"
FLAVOR_NAMES = "flavor_names/"
IMAGES = "images/"
IMAGE_MEMBERS = "image_members/"
IMAGE_NAMES = "image_names/"
PROJECT_IMAGES = "project_images/"
PROJECT_SHARED_IMAGES = "project_shared_images/"
SAVING_SNAPSHOTS = "saving_snapshots/"
# The owner under which image_names/ and project_images/ also list every PUBLIC image ('*' is
# never part of a quoted project id).
PUBLIC_SCOPE = "*public"
AGGREGATES = "aggregates/"
AGGREGATE_NAMES = "aggregate_names/"
HOST_AGGREGATES = "host_aggregates/"
AGGREGATE_ZONES = "aggregate_zones"
ZONE_HOSTS = "zone_hosts/"
SERVER_GROUPS = "server_groups/"
PROJECT_SERVER_GROUPS = "project_server_groups/"
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


def instance_details(instance_id: str) -> str:
    return f"{INSTANCE_DETAILS}{instance_id}"


def project_instances(project_id: str) -> str:
    """The prefix of one project's servers (an index: ListServers of a project reads only these)."""
    return f"{PROJECT_INSTANCES}{project_id}/"


def project_instance(project_id: str, instance_id: str) -> str:
    return f"{project_instances(project_id)}{instance_id}"


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


def quoted(part: str) -> str:
    """A name or project id as one key segment: percent-encoded, so it holds no '/'."""
    return quote(part, safe="")


def image_names(name: str, owner: str | None = None) -> str:
    """The prefix of the images called ``name`` (of one owner, or ``PUBLIC_SCOPE``, when given)."""
    prefix = f"{IMAGE_NAMES}{quoted(name)}/"
    return prefix if owner is None else f"{prefix}{quoted(owner)}/"


def image_name(name: str, owner: str, image_id: str) -> str:
    return f"{image_names(name, owner)}{image_id}"


def project_images(owner: str) -> str:
    """The prefix of one project's images (or, for ``PUBLIC_SCOPE``, of the PUBLIC ones), by id."""
    return f"{PROJECT_IMAGES}{quoted(owner)}/"


def project_image(owner: str, image_id: str) -> str:
    return f"{project_images(owner)}{image_id}"


def project_shared_images(project_id: str) -> str:
    """The prefix of the images shared with a project (it is among their members), by id."""
    return f"{PROJECT_SHARED_IMAGES}{quoted(project_id)}/"


def project_shared_image(project_id: str, image_id: str) -> str:
    return f"{project_shared_images(project_id)}{image_id}"


def saving_snapshots(instance_id: str) -> str:
    """The prefix of the SAVING images that name a server (its snapshot being saved)."""
    return f"{SAVING_SNAPSHOTS}{instance_id}/"


def saving_snapshot(instance_id: str, image_id: str) -> str:
    return f"{saving_snapshots(instance_id)}{image_id}"


def aggregate(aggregate_id: str) -> str:
    return f"{AGGREGATES}{aggregate_id}"


def aggregate_name(name: str) -> str:
    return f"{AGGREGATE_NAMES}{name}"


def host_aggregates(host: str) -> str:
    """The prefix of the aggregates a host is in, by id."""
    return f"{HOST_AGGREGATES}{host}/"


def host_aggregate(host: str, aggregate_id: str) -> str:
    return f"{host_aggregates(host)}{aggregate_id}"


def zone_hosts(zone: str) -> str:
    """The prefix of the hosts that report ``zone`` in their capabilities."""
    return f"{ZONE_HOSTS}{quoted(zone)}/"


def zone_host(zone: str, host: str) -> str:
    return f"{zone_hosts(zone)}{host}"


def split_zone_host(key: str) -> tuple[str, str]:
    """``zone_hosts/az%2F1/c1`` -> (``az/1``, ``c1``)."""
    _, zone, host = key.split("/", 2)
    return unquote(zone), host


def server_group(group_id: str) -> str:
    return f"{SERVER_GROUPS}{group_id}"


def project_server_groups(project_id: str) -> str:
    """The prefix of one project's server groups, by id."""
    return f"{PROJECT_SERVER_GROUPS}{quoted(project_id)}/"


def project_server_group(project_id: str, group_id: str) -> str:
    return f"{project_server_groups(project_id)}{group_id}"


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
