"""A flavor disk smaller than the image, found by the compute (an image the api could not measure in
time, a race): the user's request is at fault, so the build's fault is INVALID_ARGUMENT naming
``flavor_id`` (reason IMAGE_TOO_BIG), never INTERNAL, and no other host is tried."""

from __future__ import annotations

import pytest

from services.api.flows.build import NOT_RETRYABLE
from services.compute.drivers.base import BadImage, ImageTooBig, InstanceSpec
from services.compute.drivers.fake.driver import FakeDriver
from services.compute.drivers.fake.host import FakeHostSize
from services.compute.manager import ComputeManager
from services.compute.settings import ComputeSettings
from services.core import keys
from services.core.compute_report import fault_of
from services.core.errors import InvalidArgument
from services.core.etcd import Store
from stratus.state.v1 import state_pb2
from stratus.v1 import servers_pb2

HOST = "compute-test"
ID = "inst-1"
TOO_BIG = "flavor disk is smaller than the image: 1 GiB (1073741824 bytes) < image's 21474836480 bytes"


class SmallDiskDriver(FakeDriver):
    async def spawn(self, spec: InstanceSpec) -> None:
        await super().spawn(spec)  # a domain is made, then the disk found too small
        raise ImageTooBig(TOO_BIG)


async def test_a_disk_smaller_than_the_image_is_the_requests_fault(store: Store) -> None:
    server = servers_pb2.Server(id=ID, name="vm-1", image_id="img-1", host=HOST,
                                vm_state=servers_pb2.VmState.VM_STATE_BUILDING,
                                task_state=servers_pb2.TaskState.TASK_STATE_SCHEDULING,
                                resources=servers_pb2.ServerResources(vcpus=1, ram_mb=128, disk_gb=1))  # fmt: skip
    await store.put(keys.instance(ID), state_pb2.InstanceRecord(server=server).SerializeToString())
    driver = SmallDiskDriver(FakeHostSize(vcpus=8, ram_mb=16384, disk_gb=200))
    manager = ComputeManager(ComputeSettings(host=HOST, availability_zone="az-test"), store, driver)
    with pytest.raises(InvalidArgument) as info:
        await manager.build_instance(ID)
    err = info.value
    assert err.reason == "IMAGE_TOO_BIG" and err.violations == [("flavor_id", f"spawn failed on {HOST}: {TOO_BIG}")]
    fault = fault_of(err)
    assert (fault.code, fault.reason) == ("INVALID_ARGUMENT", "IMAGE_TOO_BIG")
    assert await driver.list_instances() == []  # what the attempt made is destroyed
    assert "IMAGE_TOO_BIG" in NOT_RETRYABLE  # the build does not try another host for it


def test_image_too_big_is_a_bad_image() -> None:
    """Any code that treats a BadImage as "no host can boot this" treats this one so too."""
    assert issubclass(ImageTooBig, BadImage) and ImageTooBig.reason == "IMAGE_TOO_BIG"
