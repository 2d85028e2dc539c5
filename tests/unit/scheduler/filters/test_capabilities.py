"""The capability filters (ComputeCapabilities, ImageProperties, Json): pure table tests.

Helpers and the other policy filters are in test_policy_filters.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.scheduler.filters import Filter
from services.scheduler.filters.compute_capabilities import ComputeCapabilitiesFilter
from services.scheduler.filters.image_properties import ImagePropertiesFilter, version_number, version_satisfied
from services.scheduler.filters.json_filter import JsonFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import SchedulingRequest
from tests.unit.scheduler.filters.test_policy_filters import QUERY, Case, host, q, req

CPU_INFO = json.dumps({"vendor": "Intel", "topology": {"cores": 4}})
DEEP: list[Any] = ["and"]
for _ in range(40):
    DEEP = ["and", DEEP]

CASES: dict[str, Case] = {
    # ComputeCapabilitiesFilter
    "cc-none": (ComputeCapabilitiesFilter(), host(), req(), None),
    "cc-hv-ok": (
        ComputeCapabilitiesFilter(),
        host(hypervisor_type="KVM"),
        req(extra={"capabilities:hypervisor_type": "s== KVM"}),
        None,
    ),
    "cc-hv-bad": (
        ComputeCapabilitiesFilter(),
        host(hypervisor_type="QEMU"),
        req(extra={"capabilities:hypervisor_type": "s== KVM"}),
        "flavor needs capability hypervisor_type s== KVM; host has 'QEMU'",
    ),
    "cc-features-ok": (
        ComputeCapabilitiesFilter(),
        host(cpu_features=["avx", "sse4_2", "aes"]),
        req(extra={"capabilities:cpu_features": "<all-in> aes avx"}),
        None,
    ),
    "cc-features-bad": (
        ComputeCapabilitiesFilter(),
        host(cpu_features=["avx"]),
        req(extra={"capabilities:cpu_features": "<in> avx512f"}),
        "host has 'avx'",
    ),
    "cc-vcpus": (ComputeCapabilitiesFilter(), host(), req(extra={"capabilities:vcpus": ">= 16"}), "host has '8'"),
    "cc-version": (
        ComputeCapabilitiesFilter(),
        host(hypervisor_version=6001),
        req(extra={"capabilities:hypervisor_version": ">= 6000"}),
        None,
    ),
    "cc-trusted": (ComputeCapabilitiesFilter(), host(trusted=True), req(extra={"capabilities:trusted": "true"}), None),
    "cc-missing": (
        ComputeCapabilitiesFilter(),
        host(),
        req(extra={"capabilities:cpu_model": "Haswell"}),
        "flavor needs capability cpu_model 'Haswell'; host does not report it",
    ),
    "cc-unknown-cap": (
        ComputeCapabilitiesFilter(),
        host(),
        req(extra={"capabilities:gpu": "<in> a100"}),
        "does not report",
    ),
    "cc-extra": (
        ComputeCapabilitiesFilter(),
        host(extra={"gpu": "nvidia-a100"}),
        req(extra={"capabilities:gpu": "<in> a100"}),
        None,
    ),
    "cc-nested-json": (
        ComputeCapabilitiesFilter(),
        host(extra={"cpu_info": CPU_INFO}),
        req(extra={"capabilities:cpu_info:vendor": "Intel", "capabilities:cpu_info:topology:cores": ">= 4"}),
        None,
    ),
    "cc-nested-json-bad": (
        ComputeCapabilitiesFilter(),
        host(extra={"cpu_info": CPU_INFO}),
        req(extra={"capabilities:cpu_info:topology:cores": ">= 8"}),
        "cpu_info:topology:cores >= 8; host has '4'",
    ),
    "cc-colon-key": (
        ComputeCapabilitiesFilter(),
        host(extra={"net:speed": "100"}),
        req(extra={"capabilities:net:speed": ">= 40"}),
        None,
    ),
    "cc-unscoped-checked": (
        ComputeCapabilitiesFilter(),
        host(hypervisor_type="QEMU"),
        req(extra={"hypervisor_type": "KVM"}),
        "hypervisor_type 'KVM'; host has 'QEMU'",
    ),
    "cc-unscoped-extra": (ComputeCapabilitiesFilter(), host(extra={"ssd": "yes"}), req(extra={"ssd": "no"}), "'no'"),
    "cc-unscoped-ignored": (ComputeCapabilitiesFilter(), host(), req(extra={"colour": "blue"}), None),
    "cc-other-scope": (ComputeCapabilitiesFilter(), host(), req(extra={"hw:cpu_policy": "dedicated"}), None),
    # ImagePropertiesFilter
    "img-none": (ImagePropertiesFilter(), host(), req(image={"os_distro": "ubuntu"}), None),
    "img-arch": (ImagePropertiesFilter(), host(architecture="x86_64"), req(image={"hw_architecture": "x86_64"}), None),
    "img-arch-alias": (
        ImagePropertiesFilter(),
        host(architecture="x86_64"),
        req(image={"architecture": "AMD64"}),
        None,
    ),
    "img-arch-bad": (
        ImagePropertiesFilter(),
        host(architecture="x86_64"),
        req(image={"hw_architecture": "aarch64"}),
        "image needs architecture aarch64, host is x86_64",
    ),
    "img-arch-unreported": (ImagePropertiesFilter(), host(), req(image={"architecture": "x86_64"}), "unreported"),
    "img-hv": (ImagePropertiesFilter(), host(hypervisor_type="QEMU"), req(image={"img_hv_type": "qemu"}), None),
    "img-hv-bad": (
        ImagePropertiesFilter(),
        host(hypervisor_type="QEMU"),
        req(image={"hypervisor_type": "kvm"}),
        "image needs hypervisor kvm, host runs QEMU",
    ),
    "img-vm-mode": (ImagePropertiesFilter(), host(vm_modes=["hvm", "exe"]), req(image={"hw_vm_mode": "hvm"}), None),
    "img-vm-mode-alias": (ImagePropertiesFilter(), host(vm_modes=["xen"]), req(image={"vm_mode": "pv"}), None),
    "img-vm-mode-bad": (
        ImagePropertiesFilter(),
        host(vm_modes=["hvm"]),
        req(image={"vm_mode": "exe"}),
        "image needs VM mode exe, host runs hvm",
    ),
    "img-version": (
        ImagePropertiesFilter(),
        host(hypervisor_version=6001),
        req(image={"hypervisor_version_requires": ">=6000"}),
        None,
    ),
    "img-version-low": (
        ImagePropertiesFilter(),
        host(hypervisor_version=5000),
        req(image={"img_hv_requested_version": ">=6000"}),
        "image needs hypervisor version >=6000, host has 5000",
    ),
    "img-version-dotted": (
        ImagePropertiesFilter(),
        host(hypervisor_version=6_001_000),
        req(image={"img_hv_requested_version": ">=6.0, <7.0"}),
        None,
    ),
    "img-version-range-bad": (
        ImagePropertiesFilter(),
        host(hypervisor_version=7_000_000),
        req(image={"img_hv_requested_version": ">=6.0,<7.0"}),
        "host has 7000000",
    ),
    "img-version-unreported": (ImagePropertiesFilter(), host(), req(image={"img_hv_requested_version": ">=6"}), None),
    "img-version-garbage": (
        ImagePropertiesFilter(),
        host(hypervisor_version=1),
        req(image={"img_hv_requested_version": "newest"}),
        "is not like '>=6000'",
    ),
    # JsonFilter
    "json-none": (JsonFilter(), host(), req(), None),
    "json-and": (JsonFilter(), host(instances={"a": "f"}), q(QUERY), None),
    "json-and-bad": (
        JsonFilter(),
        host(instances={"a": "f", "b": "f"}),
        q(QUERY),
        "does not match the query hint",
    ),
    "json-in": (JsonFilter(), host("h2"), q(["in", "$host", "h1", "h2"]), None),
    "json-in-bad": (JsonFilter(), host("h3"), q(["in", "$host", "h1", "h2"]), "does not match"),
    "json-not": (JsonFilter(), host("h1"), q(["not", ["=", "$host", "h1"]]), "does not match"),
    "json-or": (JsonFilter(), host("h1"), q(["or", ["=", "$host", "h9"], [">", "$vcpus_total", 4]]), None),
    "json-caps": (JsonFilter(), host(hypervisor_type="KVM"), q(["=", "$capabilities.hypervisor_type", "KVM"]), None),
    "json-caps-nested": (
        JsonFilter(),
        host(extra={"cpu_info": CPU_INFO}),
        q(["=", "$capabilities.cpu_info.topology.cores", 4]),
        None,
    ),
    "json-free-disk-mb": (JsonFilter(), host(disk_gb=2), q([">=", "$free_disk_mb", 2048]), None),
    "json-missing-var-dropped": (JsonFilter(), host(), q(["=", "$capabilities.nothing", 1]), "does not match"),
    "json-empty": (JsonFilter(), host(), q([]), None),
    "json-not-json": (JsonFilter(), host(), q("[>= 1"), "malformed query hint: not JSON"),
    "json-unknown-command": (JsonFilter(), host(), q(["~", 1, 2]), 'malformed query hint: unknown command "~"'),
    "json-unknown-var": (JsonFilter(), host(), q([">=", "$free_ram", 1]), "unknown variable $free_ram"),
    "json-not-list": (JsonFilter(), host(), q({"and": 1}), "malformed query hint: expected a list"),
    "json-object-arg": (JsonFilter(), host(), q(["=", {"a": 1}, 1]), "unexpected object"),
    "json-too-deep": (JsonFilter(), host(), q(DEEP), "nested more than 32 deep"),
    "json-types": (JsonFilter(), host(), q(["<", "$host", 5]), "compares values of different types"),
}


@pytest.mark.parametrize(("filt", "host_state", "request_", "expected"), CASES.values(), ids=CASES.keys())
def test_filter(filt: Filter, host_state: HostState, request_: SchedulingRequest, expected: str | None) -> None:
    reason = filt.host_passes(host_state, request_)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason, reason
        assert filt.is_relevant(request_)


@pytest.mark.parametrize(
    ("text", "number"), [("6000", 6000), ("6", 6), ("6.1", 6_001_000), ("6.1.2", 6_001_002), ("1.0.0", 1_000_000)]
)
def test_version_number(text: str, number: int) -> None:
    assert version_number(text) == number


@pytest.mark.parametrize(
    ("requirement", "version", "expected"),
    [
        (">=6000", 6000, True),
        (">6000", 6000, False),
        ("<6000", 5999, True),
        ("<=6000", 6001, False),
        ("6000", 6000, True),
        ("==6000", 6001, False),
        ("!=6000", 6001, True),
        ("= 6000", 6000, True),
        (">=6.0, <7.0", 6_500_000, True),
        (">=6.0, <7.0", 7_000_000, False),
        (">= 6.0,", 6_000_000, True),
    ],
)
def test_version_satisfied(requirement: str, version: int, expected: bool) -> None:
    assert version_satisfied(requirement, version) is expected


@pytest.mark.parametrize("requirement", ["", ",", "newest", ">=6.0.0.1", "=>6", ">= 6 7"])
def test_version_requirement_malformed(requirement: str) -> None:
    with pytest.raises(ValueError):
        version_satisfied(requirement, 1)


def test_malformed_query_explains_once() -> None:
    bad = q("{")
    refused = [(h, JsonFilter().host_passes(h, bad) or "") for h in (host("a"), host("b"))]
    assert JsonFilter().explain(bad, refused).startswith("malformed query hint: not JSON")


def test_plain_requests_skip_the_capability_filters() -> None:
    plain = req(extra={"hw:cpu_policy": "dedicated"}, image={"os_distro": "ubuntu"})
    assert not ComputeCapabilitiesFilter().is_relevant(plain)
    assert not ImagePropertiesFilter().is_relevant(plain)
    assert not JsonFilter().is_relevant(plain)
