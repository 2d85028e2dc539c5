"""A domain that vanished behind the compute's back (issue 18, item 6), against the real libvirtd
and the tiny guest: ``virsh undefine`` (a running domain turns transient, gone at its next stop),
``virsh destroy``, a removed instance directory. The driver defines the domain again over the disk
that remains (the config drive made again); through a whole stack, the server turns SHUTOFF with a
fault that says so, a start or a hard reboot brings it back, and with its disk gone it is ERROR."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.compute.drivers.base import InstanceNotFound
from services.compute.drivers.libvirt.driver import LibvirtDriver
from stratus.v1 import servers_pb2
from tests.e2e.test_libvirt_driver import READY, console_shows, new_spec
from tests.support.domains import remove_domains_under
from tests.support.stack import Stack, start_stack

P = servers_pb2.PowerState
NAME_LINE = "stratus-guest: name="


def virsh(*args: str) -> str:
    done = subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def persistent(instance_id: str) -> bool:
    return any(line.split() == ["Persistent:", "yes"] for line in virsh("dominfo", instance_id).splitlines())


# ---- the driver ---------------------------------------------------------------------------------
@pytest.mark.asyncio(loop_scope="session")
async def test_the_driver_defines_a_vanished_domain_again_over_its_disk(driver: LibvirtDriver) -> None:
    spec = new_spec("vanishing-1")
    iid = spec.instance_id
    await driver.spawn(spec)
    await console_shows(driver, iid, READY)

    virsh("undefine", iid)  # running: it turns transient, and would be gone at its next stop
    assert (await driver.has_domain(iid), await driver.has_disk(iid)) == (False, True)
    assert await driver.get_power_state(iid) == P.POWER_STATE_RUNNING
    assert await driver.redefine(spec) is True
    assert persistent(iid) and "running" in virsh("domstate", iid)

    virsh("destroy", iid)
    virsh("undefine", iid)  # gone
    driver.files(iid).config_drive.unlink()
    assert await driver.get_power_state(iid) == P.POWER_STATE_NOSTATE
    assert await driver.redefine(spec) is True
    assert await driver.redefine(spec) is False  # there already
    assert "shut off" in virsh("domstate", iid)
    assert driver.files(iid).config_drive.exists()  # made again
    boots = (await driver.console_output(iid, 0)).count(READY)
    await driver.reboot(iid, hard=True)
    deadline = asyncio.get_running_loop().time() + 60
    while (await driver.console_output(iid, 0)).count(READY) <= boots:
        assert asyncio.get_running_loop().time() < deadline, "no boot of the domain defined again"
        await asyncio.sleep(0.2)
    assert "user data" in await driver.console_output(iid, 0)  # from the config drive made again

    virsh("destroy", iid)
    virsh("undefine", iid)
    await asyncio.to_thread(shutil.rmtree, driver.files(iid).root)
    assert (await driver.has_domain(iid), await driver.has_disk(iid)) == (False, False)
    with pytest.raises(InstanceNotFound):
        await driver.redefine(spec)


# ---- a whole stack ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(libvirtd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"STRATUS_SHUTDOWN_TIMEOUT_S": "5", "STRATUS_RECONCILE_INTERVAL_S": "1"}
    s = start_stack(Path(tmp_path_factory.mktemp("vanished")), "--driver", "libvirt", env=env)
    yield s
    code = s.stop()
    leftovers = remove_domains_under(s.state_dir)
    assert code == 0, s.log_tail()
    assert not leftovers, f"domains left behind: {leftovers}"


def settled(stack: Stack, server_id: str, status: str) -> servers_pb2.Server:
    server: servers_pb2.Server = stack.wait_for_server(server_id, {status}, timeout_s=90)
    return server


def boots_of(stack: Stack, server_id: str) -> int:
    request = servers_pb2.GetServerConsoleOutputRequest(id=server_id)
    return int(stack.servers.GetServerConsoleOutput(request, metadata=stack.md()).output.count(READY))


def booted_again(stack: Stack, server_id: str, boots: int, timeout_s: float = 90.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (now := boots_of(stack, server_id)) <= boots:
        assert time.monotonic() < deadline, f"server {server_id} did not boot again:\n{stack.log_tail()}"
        time.sleep(0.2)
    return now


def test_a_server_whose_domain_vanished_is_shutoff_then_starts_and_hard_reboots_back(stack: Stack) -> None:
    spec = servers_pb2.Server(name="vanish-vm", flavor_id="m1.tiny", image_id="tiny")
    created = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md())
    server = settled(stack, created.id, "ACTIVE")
    boots = booted_again(stack, server.id, 0)
    disk_dir = Path(virsh("domblklist", server.id).split("\n")[2].split()[1]).parent  # .../instances/<host>/<id>

    # An operator undefines the running domain and destroys it: the compute hears of it at once.
    virsh("undefine", server.id)
    virsh("destroy", server.id)
    server = settled(stack, server.id, "SHUTOFF")
    assert (server.power_state, server.fault.reason) == (P.POWER_STATE_NOSTATE, "DOMAIN_VANISHED")
    assert server.fault.message == (f"the domain of this server vanished from {server.host}; "
                                    "its disk remains: start or hard-reboot it to recreate it")  # fmt: skip
    stack.servers.StartServer(servers_pb2.StartServerRequest(id=server.id), metadata=stack.md())
    server = settled(stack, server.id, "ACTIVE")
    assert not server.HasField("fault")
    assert "running" in virsh("domstate", server.id) and persistent(server.id)
    boots = booted_again(stack, server.id, boots)

    # Undefined while it runs (transient): a hard reboot defines it again, as Nova's does.
    virsh("undefine", server.id)
    assert not persistent(server.id)
    request = servers_pb2.RebootServerRequest(id=server.id, type=servers_pb2.REBOOT_TYPE_HARD)
    stack.servers.RebootServer(request, metadata=stack.md())
    server = settled(stack, server.id, "ACTIVE")
    assert "running" in virsh("domstate", server.id) and persistent(server.id)
    booted_again(stack, server.id, boots)

    # Its instance directory removed too: ERROR, and a delete cleans up.
    stack.servers.StopServer(servers_pb2.StopServerRequest(id=server.id), metadata=stack.md())
    settled(stack, server.id, "SHUTOFF")
    virsh("undefine", server.id)
    shutil.rmtree(disk_dir)
    server = settled(stack, server.id, "ERROR")
    assert (server.power_state, server.fault.reason) == (P.POWER_STATE_NOSTATE, "DISK_VANISHED")
    stack.servers.DeleteServer(servers_pb2.DeleteServerRequest(id=server.id), metadata=stack.md())
    stack.wait_gone(server.id)
    assert "failed to get domain" in virsh("domstate", server.id)
