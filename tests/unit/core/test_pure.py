"""Pure logic of the core library: status derivation, error mapping, ids, tokens, settings."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.core import errors
from services.core.config import CommonSettings, load_settings
from services.core.etcd import endpoints_from_urls
from services.core.ids import new_id
from services.core.states import derive_status
from services.core.tokens import TokenFile, add_token, digest
from stratus.v1 import servers_pb2 as pb

S, V, T = pb.ServerStatus, pb.VmState, pb.TaskState


@pytest.mark.parametrize(
    ("vm", "task", "status"),
    [
        (V.VM_STATE_BUILDING, T.TASK_STATE_SCHEDULING, S.SERVER_STATUS_BUILD),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_UNSPECIFIED, S.SERVER_STATUS_ACTIVE),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_REBOOTING, S.SERVER_STATUS_REBOOT),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_REBOOTING_HARD, S.SERVER_STATUS_HARD_REBOOT),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_POWERING_OFF, S.SERVER_STATUS_ACTIVE),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_RESIZE_PREP, S.SERVER_STATUS_RESIZE),
        (V.VM_STATE_ACTIVE, T.TASK_STATE_MIGRATING, S.SERVER_STATUS_MIGRATING),
        (V.VM_STATE_STOPPED, T.TASK_STATE_UNSPECIFIED, S.SERVER_STATUS_SHUTOFF),
        (V.VM_STATE_RESIZED, T.TASK_STATE_UNSPECIFIED, S.SERVER_STATUS_VERIFY_RESIZE),
        (V.VM_STATE_RESIZED, T.TASK_STATE_RESIZE_REVERTING, S.SERVER_STATUS_REVERT_RESIZE),
        (V.VM_STATE_ERROR, T.TASK_STATE_DELETING, S.SERVER_STATUS_ERROR),
        (V.VM_STATE_PAUSED, T.TASK_STATE_UNSPECIFIED, S.SERVER_STATUS_PAUSED),
        (V.VM_STATE_SUSPENDED, T.TASK_STATE_UNSPECIFIED, S.SERVER_STATUS_SUSPENDED),
    ],
)
def test_status_derives_from_vm_and_task_state(vm: int, task: int, status: int) -> None:
    assert derive_status(vm, task) == status


def all_subclasses(cls: type) -> set[type]:
    out: set[type] = set(cls.__subclasses__())
    for sub in list(out):
        out |= all_subclasses(sub)
    return out


def test_every_domain_error_has_a_code() -> None:
    """Every StratusError subclass anywhere in services/ (each module imported, so a new one is
    found the day it is added) maps to a status code through the table, none to UNKNOWN; and only
    Internal and its subclasses answer INTERNAL."""
    import importlib
    import pkgutil

    import services

    for module in pkgutil.walk_packages(services.__path__, "services."):
        if ".gen." not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found = all_subclasses(errors.StratusError)
    assert {errors.InvalidArgument, errors.Internal, errors.QuotaExceeded} <= found
    wrong = []
    for cls in sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        code = next((errors.CODES[c] for c in cls.__mro__ if c in errors.CODES), grpc.StatusCode.UNKNOWN)
        internal = issubclass(cls, errors.Internal)
        if code == grpc.StatusCode.UNKNOWN or (code == grpc.StatusCode.INTERNAL) != internal:
            wrong.append(f"{cls.__module__}.{cls.__qualname__}: {code.name}")
    assert not wrong, "\n".join(wrong)


def test_invalid_argument_carries_field_violations_and_reason() -> None:
    status = errors.to_status(errors.InvalidArgument([("server.name", "is required"), ("request_id", "bad")]))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    decoded = status_pb2.Status.FromString(details)
    bad = error_details_pb2.BadRequest()
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(bad) for d in decoded.details) and any(d.Unpack(info) for d in decoded.details)
    assert [v.field for v in bad.field_violations] == ["server.name", "request_id"]
    assert info.reason == "INVALID_ARGUMENT" and info.domain == errors.DOMAIN


def test_not_found_carries_resource_info() -> None:
    status = errors.to_status(errors.NotFound("server", "abc"))
    decoded = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    info = error_details_pb2.ResourceInfo()
    assert any(d.Unpack(info) for d in decoded.details)
    assert (info.resource_type, info.resource_name) == ("server", "abc")
    assert status.details == "server 'abc' not found"


def test_ids_are_uuid7_and_sort_by_time() -> None:
    ids = [new_id() for _ in range(200)]
    assert all(i[14] == "7" for i in ids)
    assert len(set(ids)) == 200
    assert ids[0][:8] <= ids[-1][:8]


def test_tokens_file_stores_digests_and_authenticates(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin = add_token(path, "admin", "admin", "admin", ["admin", "member"])
    demo = add_token(path, "demo", "demo", "demo", ["member"])
    assert admin not in path.read_text() and digest(admin) in path.read_text()
    tokens = TokenFile(path)
    assert tokens.authenticate(admin).is_admin
    ctx = tokens.authenticate(demo)
    assert (ctx.project_id, ctx.is_admin) == ("demo", False)
    with pytest.raises(errors.Unauthenticated):
        tokens.authenticate("nope")
    replaced = add_token(path, "demo", "demo", "demo", ["member"])
    assert tokens.authenticate(replaced).project_id == "demo"
    with pytest.raises(errors.Unauthenticated):
        tokens.authenticate(demo)
    assert len(json.loads(path.read_text())["tokens"]) == 2


def test_settings_precedence_flag_over_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Demo(CommonSettings):
        binary = "demo"

    cfg = tmp_path / "s.toml"
    cfg.write_text('host = "from-file"\nport = 1\n[demo]\nlog_level = "DEBUG"\n[other]\nport = 9\n')
    monkeypatch.setenv("STRATUS_PORT", "2")
    s = load_settings(Demo, cfg)
    assert (s.host, s.port, s.log_level) == ("from-file", 2, "DEBUG")
    s = load_settings(Demo, cfg, port=3, host=None)
    assert (s.host, s.port) == ("from-file", 3)
    monkeypatch.setenv("STRATUS_ETCD", "http://a:1, b:2")
    assert load_settings(Demo).etcd == ["http://a:1", "b:2"]
    with pytest.raises(FileNotFoundError):
        load_settings(Demo, tmp_path / "missing.toml")


def test_etcd_urls_become_endpoints() -> None:
    assert endpoints_from_urls(["http://127.0.0.1:2379,127.0.0.2:1"]) == ["127.0.0.1:2379", "127.0.0.2:1"]
    with pytest.raises(ValueError, match="no etcd"):
        endpoints_from_urls([" , "])
