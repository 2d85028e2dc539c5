"""Nova baseline: OpenStack Nova's own scheduler filters and weighers on issue 3's synthetic workload.

Runs in the separate virtualenv made by ``bench/setup_nova_venv.sh`` (Nova is installed there,
never copied here)::

    /tmp/nova-venv/bin/python bench/nova_baseline.py --hosts 1000 --decisions 1000

Each host becomes a ``nova.scheduler.host_manager.HostState`` filled by Nova's own
``HostState.update(compute=ComputeNode, service=..., aggregates=[Aggregate])``. A decision is
Nova's ``SchedulerManager._get_sorted_hosts`` (``HostManager.get_filtered_hosts`` ->
``BaseFilterHandler.get_filtered_objects`` with the default ``enabled_filters``, then
``HostManager.get_weighed_hosts`` -> ``BaseWeightHandler.get_weighed_objects`` with
``all_weighers``, then the pick among ``host_subset_size``) followed by
``SchedulerManager._consume_selected_host`` (``HostState.consume_from_request``). What Nova does
around that with its database, RPC and Placement is not run: see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import random
import statistics
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import REQUEST, Host, choices_digest, make_hosts

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # printed when oslo imports eventlet

import nova.conf  # type: ignore[import-not-found]  # noqa: E402
from nova import objects  # type: ignore[import-not-found]  # noqa: E402
from nova.scheduler import filters as host_filters  # type: ignore[import-not-found]  # noqa: E402
from nova.scheduler import host_manager, manager  # type: ignore[import-not-found]  # noqa: E402
from nova.scheduler import weights as host_weights  # type: ignore[import-not-found]  # noqa: E402

CONF = nova.conf.CONF
CPU_RATIO, RAM_RATIO, DISK_RATIO = 4.0, 1.0, 1.0


def configure() -> None:
    """oslo.config with Nova's defaults only (no nova.conf file read), and Nova's objects."""
    CONF([], project="nova", default_config_files=[])
    # ComputeFilter uses Nova's real servicegroup DB driver, whose is_up() only compares the
    # service's last heartbeat with now; widen the window so a long run never ages hosts out.
    CONF.set_override("service_down_time", 10**6)
    objects.register_all()


def make_scheduler() -> Any:
    """A SchedulerManager/HostManager pair loaded like Nova's, minus the DB reads in __init__."""
    hm = host_manager.HostManager.__new__(host_manager.HostManager)
    hm.filter_handler = host_filters.HostFilterHandler()
    filter_classes = hm.filter_handler.get_matching_classes(CONF.filter_scheduler.available_filters)
    hm.filter_cls_map = {cls.__name__: cls for cls in filter_classes}
    hm.filter_obj_map = {}
    hm.enabled_filters = hm._choose_host_filters(hm._load_filters())
    hm.weight_handler = host_weights.HostWeightHandler()
    weigher_classes = hm.weight_handler.get_matching_classes(CONF.filter_scheduler.weight_classes)
    hm.weighers = [cls() for cls in weigher_classes]
    sm = manager.SchedulerManager.__new__(manager.SchedulerManager)
    sm.host_manager = hm
    return sm


def make_host_states(hosts: list[Host]) -> list[Any]:
    """HostState objects filled through Nova's HostState.update(), as the scheduler does."""
    now = datetime.datetime.now(datetime.UTC)
    aggregates = {
        az: objects.Aggregate(
            id=i,
            uuid=str(uuid.uuid4()),
            name=az,
            metadata={"availability_zone": az},
            hosts=[h["host"] for h in hosts if h["availability_zone"] == az],
        )
        for i, az in enumerate(("az1", "az2"), start=1)
    }
    cell = str(uuid.uuid4())
    states = []
    for i, h in enumerate(hosts, start=1):
        compute = objects.ComputeNode(
            id=i,
            uuid=str(uuid.uuid4()),
            host=h["host"],
            hypervisor_hostname=h["host"],
            service_id=i,
            vcpus=h["vcpus"],
            vcpus_used=h["vcpus_used"],
            memory_mb=h["ram_mb"],
            memory_mb_used=h["ram_mb_used"],
            free_ram_mb=h["ram_mb"] - h["ram_mb_used"],
            local_gb=h["disk_gb"],
            local_gb_used=h["disk_gb_used"],
            free_disk_gb=h["disk_gb"] - h["disk_gb_used"],
            disk_available_least=None,
            current_workload=0,
            running_vms=0,
            hypervisor_type="QEMU",
            hypervisor_version=8_000_000,
            cpu_info="{}",
            host_ip=f"192.0.2.{i % 250 + 1}",
            supported_hv_specs=[objects.HVSpec(arch="x86_64", hv_type="kvm", vm_mode="hvm")],
            pci_device_pools=objects.PciDevicePoolList(objects=[]),
            numa_topology=None,
            metrics="[]",
            stats={"num_instances": "0", "io_workload": "0", "failed_builds": "0"},
            cpu_allocation_ratio=CPU_RATIO,
            ram_allocation_ratio=RAM_RATIO,
            disk_allocation_ratio=DISK_RATIO,
            updated_at=now,
            created_at=now,
        )
        service = {
            "id": i,
            "host": h["host"],
            "binary": "nova-compute",
            "topic": "compute",
            "disabled": False,
            "disabled_reason": None,
            "forced_down": False,
            "last_seen_up": now,
            "created_at": now,
            "updated_at": now,
        }
        state = host_manager.HostState(h["host"], h["host"], cell)
        state.update(compute=compute, service=service, aggregates=[aggregates[h["availability_zone"]]])
        states.append(state)
    return states


def make_request_spec() -> Any:
    flavor = objects.Flavor(
        id=1,
        flavorid="bench",
        name="bench",
        vcpus=REQUEST["vcpus"],
        memory_mb=REQUEST["ram_mb"],
        root_gb=REQUEST["disk_gb"],
        ephemeral_gb=0,
        swap=0,
        extra_specs={},
    )
    return objects.RequestSpec(
        instance_uuid=str(uuid.uuid4()),
        project_id="bench",
        user_id="bench",
        flavor=flavor,
        image=objects.ImageMeta(properties=objects.ImageMetaProps()),
        num_instances=1,
        instance_group=None,
        scheduler_hints={},
        ignore_hosts=None,
        force_hosts=None,
        force_nodes=None,
        requested_destination=None,
        pci_requests=None,
        numa_topology=None,
        availability_zone=None,
    )


def decide(sm: Any, states: list[Any], spec: Any) -> Any:
    """One scheduling decision: filter, weigh, pick, consume -- all Nova's code."""
    sorted_hosts = sm._get_sorted_hosts(spec, states, 0)
    if not sorted_hosts:
        raise RuntimeError("Nova's filters removed every host")
    chosen = sorted_hosts[0]
    manager.SchedulerManager._consume_selected_host(chosen, spec)
    return chosen


def run(n_hosts: int, n_decisions: int, warmup: int, seed: int) -> dict[str, Any]:
    configure()
    random.seed(seed)  # Nova's pick among host_subset_size uses the random module
    sm = make_scheduler()
    hosts = make_hosts(n_hosts, seed)
    spec = make_request_spec()
    warm_states = make_host_states(hosts)  # warm up on a copy so the timed run starts from the workload
    for _ in range(warmup):
        decide(sm, warm_states, spec)
    states = make_host_states(hosts)
    passed = len(sm.host_manager.get_filtered_hosts(states, spec))
    if passed != n_hosts:
        raise RuntimeError(f"only {passed} of {n_hosts} hosts pass Nova's filters: check the host states")
    latencies: list[float] = []
    choices: list[str] = []
    start = time.perf_counter()
    for _ in range(n_decisions):
        t0 = time.perf_counter()
        chosen = decide(sm, states, spec)
        latencies.append(time.perf_counter() - t0)
        choices.append(chosen.host)
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    hm = sm.host_manager
    return {
        "impl": "nova",
        "nova_version": importlib.metadata.version("nova"),
        "hosts": n_hosts,
        "decisions": n_decisions,
        "decisions_per_s": round(n_decisions / elapsed, 2),
        "p50_ms": round(cuts[49] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
        "filters": [type(f).__name__ for f in hm.enabled_filters],
        "weighers": [type(w).__name__ for w in hm.weighers],
        "first_choices": choices[:5],
        "choices_digest": choices_digest(choices),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20, help="untimed decisions on a separate copy first")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(json.dumps(run(args.hosts, args.decisions, args.warmup, args.seed)))


if __name__ == "__main__":
    main()
