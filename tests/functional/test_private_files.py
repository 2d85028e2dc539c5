"""Files private (issue 17): a stack started on a state dir an older release left open (0755 dirs,
0644 files), then made to write everything it writes (a server with user data and an SSH key kept
by the fake hypervisor, a private image, a snapshot, logs, tokens, certificates, etcd's data), has
nothing under its state dir that group or others may read, write or enter."""

from __future__ import annotations

import base64
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.v1 import images_pb2, keypairs_pb2, servers_pb2
from tests.support import ssh_keys
from tests.support.modes import open_to_others
from tests.support.stack import Stack, start_stack

USER_DATA = b"#cloud-config\npassword: hunter2\n"
Status = images_pb2.ImageStatus


def left_open_by_an_older_release(state_dir: Path) -> None:
    for directory in (state_dir, state_dir / "logs", state_dir / "images"):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
    old_log = state_dir / "logs" / "api-1.log"
    old_log.write_text("an old log line with a user's data\n")
    old_log.chmod(0o644)


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir = Path(tmp_path_factory.mktemp("private")) / "state"
    left_open_by_an_older_release(state_dir)
    # The fake hypervisor keeps its domains (each with its user data and keys) in the state dir.
    env = {"STRATUS_FAKE_DOMAINS_DIR": str(state_dir / "fake-domains")}
    s = start_stack(state_dir, "--driver", "fake", env=env)
    yield s
    assert s.stop() == 0, s.log_tail()


def wait_active(stack: Stack, image: images_pb2.Image, who: str) -> images_pb2.Image:
    deadline = time.monotonic() + 60
    while image.status != Status.IMAGE_STATUS_ACTIVE:
        assert time.monotonic() < deadline, f"image {image.id} still {image.status}:\n{stack.log_tail()}"
        time.sleep(0.1)
        image = stack.images.GetImage(images_pb2.GetImageRequest(id=image.id), metadata=stack.md(who))
    return image


def upload_private_image(stack: Stack) -> images_pb2.Image:
    meta = images_pb2.Image(name=f"private-{uuid.uuid4().hex[:6]}", disk_format="raw",
                            visibility=images_pb2.ImageVisibility.IMAGE_VISIBILITY_PRIVATE)  # fmt: skip
    messages = [images_pb2.UploadImageRequest(metadata=meta), images_pb2.UploadImageRequest(chunk=b"secret" * 1024)]
    image = stack.images.UploadImage(iter(messages), metadata=stack.md("demo"))
    return wait_active(stack, image, "demo")


def boot_with_user_data_and_key(stack: Stack) -> servers_pb2.Server:
    key_name = f"key-{uuid.uuid4().hex[:6]}"
    request = keypairs_pb2.CreateKeypairRequest(name=key_name, public_key=ssh_keys.ED25519)
    stack.keypairs.CreateKeypair(request, metadata=stack.md("demo"))
    spec = servers_pb2.Server(name="private", flavor_id="m1.tiny", image_id="tiny", user_data=USER_DATA,
                              key_name=key_name)  # fmt: skip
    created = stack.servers.CreateServer(servers_pb2.CreateServerRequest(server=spec), metadata=stack.md("demo"))
    server: servers_pb2.Server = stack.wait_for_server(created.id, {"ACTIVE"}, who="demo")
    return server


def snapshot(stack: Stack, server: servers_pb2.Server) -> images_pb2.Image:
    request = servers_pb2.SnapshotServerRequest(id=server.id, image_name="private-snap")
    image = stack.servers.SnapshotServer(request, metadata=stack.md("demo"))
    done = wait_active(stack, image, "demo")
    stack.wait_for_server(server.id, {"ACTIVE"}, who="demo")
    return done


def test_nothing_under_the_state_dir_is_open_to_group_or_others(private_stack: Stack) -> None:
    state_dir = private_stack.state_dir
    server = boot_with_user_data_and_key(private_stack)
    image = upload_private_image(private_stack)
    snap = snapshot(private_stack, server)

    # What the stack wrote is there, so the walk below has seen it.
    domains = state_dir / "fake-domains"
    assert any(base64.b64encode(USER_DATA).decode() in p.read_text() for p in domains.glob("*.json"))
    assert {image.id, snap.id} <= {p.name for p in (state_dir / "images").iterdir()}
    for name in ("tokens.json", "service.token", "stack.json", "logs/api-1.log", "logs/compute-1.log", "etcd"):
        assert (state_dir / name).exists(), name

    assert private_stack.secure  # plain `stratus up`: the stack's CA and keys are walked too
    assert (state_dir / "tls" / "ca-key.pem").exists()
    offenders = open_to_others(state_dir)
    assert not offenders, "open to group or others under the state dir:\n" + "\n".join(offenders)


def test_the_old_files_were_closed_and_new_ones_are_0600(private_stack: Stack) -> None:
    state_dir = private_stack.state_dir
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "logs" / "api-1.log").stat().st_mode) == 0o600  # appended to, not made anew
    # The harness's own log of `stratus up`, made 0644 before the launcher ran.
    assert stat.S_IMODE((state_dir / "launcher.log").stat().st_mode) == 0o600
