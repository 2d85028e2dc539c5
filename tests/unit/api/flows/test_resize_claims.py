"""A same-host resize in the record and the claim: the arithmetic, the checks, each step."""

from __future__ import annotations

import pytest

from services.api.flows import resize_claims
from services.core import claims
from services.core.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from stratus.state.v1 import state_pb2
from stratus.v1 import flavors_pb2
from stratus.v1 import servers_pb2 as pb

V = pb.VmState
T = pb.TaskState
SMALL = pb.ServerResources(vcpus=1, ram_mb=128, disk_gb=1)
WIDE = flavors_pb2.Flavor(id="wide", name="wide", vcpus=4, ram_mb=64, disk_gb=1)
BIG = flavors_pb2.Flavor(id="big", name="big", vcpus=2, ram_mb=2048, disk_gb=20)


def res(vcpus: int, ram_mb: int, disk_gb: int) -> pb.ServerResources:
    return pb.ServerResources(vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb)


def caps(ram_mb: int = 4096, disk_gb: int = 100, reserved_ram_mb: int = 0) -> state_pb2.HostCapabilities:
    return state_pb2.HostCapabilities(host="h1", vcpus=8, ram_mb=ram_mb, disk_gb=disk_gb,
                                      reserved_ram_mb=reserved_ram_mb)  # fmt: skip


def claim(instance_id: str, r: pb.ServerResources, flavor_id: str = "tiny") -> state_pb2.Claim:
    return claims.sized(state_pb2.Claim(instance_id=instance_id, project_id="p"), r, flavor_id)


def setup(vm: int = V.VM_STATE_ACTIVE) -> tuple[state_pb2.InstanceRecord, state_pb2.HostUsage]:
    server = pb.Server(id="s1", project_id="p", flavor_id="tiny", host="h1", vm_state=vm,  # type: ignore[arg-type]
                       resources=SMALL)  # fmt: skip
    usage = state_pb2.HostUsage()
    usage.claims["s1"].CopyFrom(claim("s1", SMALL))
    usage.claims["other"].CopyFrom(claim("other", res(2, 1024, 10)))
    return state_pb2.InstanceRecord(server=server), usage


def test_a_resize_holds_the_larger_cpus_and_ram_and_both_disks() -> None:
    assert claims.resize_hold(res(1, 2048, 5), res(4, 64, 10)) == res(4, 2048, 15)


def test_shortfall_counts_every_other_claim_and_the_reserved_part() -> None:
    _, usage = setup()
    assert claims.shortfall(caps(), usage, "s1", res(2, 3072, 90)) == []
    assert claims.shortfall(caps(), usage, "s1", res(2, 3073, 91)) == ["ram_mb", "disk_gb"]
    assert claims.shortfall(caps(reserved_ram_mb=1024), usage, "s1", res(2, 3072, 1)) == ["ram_mb"]


def test_shortfall_never_blames_a_resource_the_claim_does_not_grow() -> None:
    _, usage = setup()
    assert claims.shortfall(caps(ram_mb=512), usage, "s1", res(64, 128, 1)) == []  # vCPUs are not checked


def test_start_resize_keeps_the_old_size_and_holds_both() -> None:
    record, usage = setup()
    resize_claims.start_resize(record, usage, caps(), WIDE)
    server = record.server
    assert (server.flavor_id, server.resources, server.task_state) == ("wide", res(4, 64, 1), T.TASK_STATE_RESIZE_PREP)
    assert record.resize == state_pb2.ResizeRecord(old_flavor_id="tiny", old_resources=SMALL)
    held = usage.claims["s1"]
    assert (held.vcpus, held.ram_mb, held.disk_gb, held.flavor_id, held.project_id) == (
        4,
        128,
        2,
        "wide",
        "p",
    )  # both disks
    assert usage.claims["other"] == claim("other", res(2, 1024, 10))


def test_the_same_flavor_is_refused_naming_flavor_id() -> None:
    record, usage = setup()
    same = flavors_pb2.Flavor(id="tiny", name="m1.tiny", vcpus=1, ram_mb=128, disk_gb=1)
    with pytest.raises(InvalidArgument) as info:
        resize_claims.start_resize(record, usage, caps(), same)
    assert [f for f, _ in info.value.violations] == ["flavor_id"]


def test_a_smaller_disk_is_refused_naming_flavor_id() -> None:
    record, usage = setup()
    record.server.resources.disk_gb = 40
    with pytest.raises(InvalidArgument) as info:
        resize_claims.start_resize(record, usage, caps(), BIG)
    assert [f for f, _ in info.value.violations] == ["flavor_id"] and "20 GB" in info.value.message


def test_no_room_for_both_sizes_is_resource_exhausted() -> None:
    record, usage = setup()
    with pytest.raises(ResourceExhausted) as info:
        resize_claims.start_resize(record, usage, caps(ram_mb=2048), BIG)
    assert info.value.metadata["resources"] == "ram_mb"


def test_resize_needs_active_and_no_resize_being_settled() -> None:
    record, usage = setup(V.VM_STATE_STOPPED)
    with pytest.raises(FailedPrecondition):
        resize_claims.start_resize(record, usage, caps(), BIG)
    record, usage = setup()
    record.resize.old_flavor_id = "older"
    with pytest.raises(FailedPrecondition, match="settled"):
        resize_claims.start_resize(record, usage, caps(), BIG)


def resized() -> tuple[state_pb2.InstanceRecord, state_pb2.HostUsage]:
    record, usage = setup()
    resize_claims.start_resize(record, usage, caps(), BIG)
    record.server.vm_state = V.VM_STATE_RESIZED  # what the compute writes
    record.server.task_state = T.TASK_STATE_UNSPECIFIED
    return record, usage


def test_confirm_then_settle_leaves_the_new_size_in_the_claim() -> None:
    record, usage = resized()
    resize_claims.start_confirm(record)
    assert record.server.task_state == T.TASK_STATE_RESIZE_CONFIRMING
    assert resize_claims.settle_claim(record, usage) is False  # not before the compute confirmed
    record.server.vm_state, record.server.task_state = V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED
    assert resize_claims.needs_settling(record)
    resize_claims.settle_claim(record, usage)
    assert not record.HasField("resize") and record.server.flavor_id == "big"
    assert claims.totals(state_pb2.HostUsage(claims={"s1": usage.claims["s1"]})).ram_mb == 2048
    assert usage.claims["s1"].flavor_id == "big"


def test_revert_puts_the_old_size_back_at_once_and_settle_gives_the_claim_back() -> None:
    record, usage = resized()
    resize_claims.start_revert(record)
    assert (record.server.flavor_id, record.server.resources) == ("tiny", SMALL)
    assert record.resize.old_flavor_id == "big"  # what a failed revert goes back to
    record.server.vm_state, record.server.task_state = V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED
    resize_claims.settle_claim(record, usage)
    assert not record.HasField("resize")
    assert usage.claims["s1"] == claim("s1", SMALL, "tiny")


def test_confirm_or_revert_without_a_resize_is_refused() -> None:
    record, _ = setup(V.VM_STATE_RESIZED)
    for start in (resize_claims.start_confirm, resize_claims.start_revert):
        with pytest.raises(FailedPrecondition):
            start(record)


def test_undo_after_a_failed_resize_restores_the_old_size_and_claim() -> None:
    record, usage = setup()
    resize_claims.start_resize(record, usage, caps(), BIG)
    resize_claims.undo(record, usage)
    assert (record.server.flavor_id, record.server.resources) == ("tiny", SMALL)
    assert not record.HasField("resize") and usage.claims["s1"] == claim("s1", SMALL, "tiny")


def test_undo_leaves_a_server_the_compute_did_resize() -> None:
    record, usage = resized()
    assert resize_claims.undo(record, usage) is False and record.server.flavor_id == "big"


def test_a_resize_in_progress_is_never_settled() -> None:
    record, usage = setup()
    resize_claims.start_resize(record, usage, caps(), BIG)
    assert not resize_claims.needs_settling(record)
    assert resize_claims.settle_claim(record, usage) is False
