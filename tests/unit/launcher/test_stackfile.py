"""stack.json: written atomically with mode 0600, read back whole, garbage reported."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from services.core.etcd import EtcdTls
from services.launcher.stackfile import (
    BadStackFile,
    ServiceEntry,
    StackInfo,
    read_stack,
    remove_stack,
    stack_path,
    write_stack,
)

INFO = StackInfo(
    api="127.0.0.1:8774",
    etcd=["http://127.0.0.1:2379"],
    token="admin-token",
    demo_token="demo-token",
    state_dir="/tmp/x",
    services=[ServiceEntry("compute", "compute-1", "127.0.0.1:40123", 4242)],
)


def test_written_as_the_documented_json_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = stack_path(tmp_path)
    write_stack(path, INFO)
    data = json.loads(path.read_text())
    assert data["api"] == "127.0.0.1:8774"
    assert data["etcd"] == ["http://127.0.0.1:2379"]
    assert (data["token"], data["demo_token"]) == ("admin-token", "demo-token")
    assert data["services"] == [{"binary": "compute", "host": "compute-1", "endpoint": "127.0.0.1:40123", "pid": 4242}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.json"]  # no temporary file left


def test_a_rewrite_replaces_the_whole_file(tmp_path: Path) -> None:
    path = stack_path(tmp_path)
    write_stack(path, INFO)
    write_stack(path, StackInfo("127.0.0.1:1", [], "t", "d", "/s"))
    again = read_stack(path)
    assert again is not None and again.api == "127.0.0.1:1" and again.services == []


def test_read_back_equals_what_was_written(tmp_path: Path) -> None:
    write_stack(stack_path(tmp_path), INFO)
    assert read_stack(stack_path(tmp_path)) == INFO


def test_no_file_is_no_stack_and_garbage_is_an_error(tmp_path: Path) -> None:
    path = stack_path(tmp_path)
    assert read_stack(path) is None
    for garbage in ("{", "[]", '{"api": 1}', '{"api": "x", "services": [{"bogus": 1}]}'):
        path.write_text(garbage)
        with pytest.raises(BadStackFile):
            read_stack(path)


def test_remove_is_quiet_when_already_gone(tmp_path: Path) -> None:
    path = stack_path(tmp_path)
    write_stack(path, INFO)
    remove_stack(path)
    remove_stack(path)
    assert not path.exists()


def test_the_ca_cert_is_kept_and_an_older_file_without_it_reads_as_plaintext(tmp_path: Path) -> None:
    path = stack_path(tmp_path)
    write_stack(path, StackInfo("127.0.0.1:1", [], "t", "d", str(tmp_path), ca_cert="/s/tls/ca.pem"))
    info = read_stack(path)
    assert info is not None and info.ca_cert == "/s/tls/ca.pem"
    path.write_text(json.dumps({"api": "127.0.0.1:1"}))
    old = read_stack(path)
    assert old is not None and old.ca_cert == ""


def test_every_api_replica_is_listed_with_api_the_first(tmp_path: Path) -> None:
    path = stack_path(tmp_path)
    write_stack(path, StackInfo("127.0.0.1:1", [], "t", "d", "/s", apis=["127.0.0.1:1", "127.0.0.1:2"]))
    assert json.loads(path.read_text())["apis"] == ["127.0.0.1:1", "127.0.0.1:2"]
    info = read_stack(path)
    assert info is not None and (info.api, info.apis) == ("127.0.0.1:1", ["127.0.0.1:1", "127.0.0.1:2"])


def test_one_api_or_an_older_file_lists_the_api_alone(tmp_path: Path) -> None:
    assert StackInfo("127.0.0.1:1", [], "t", "d", "/s").apis == ["127.0.0.1:1"]
    path = stack_path(tmp_path)
    path.write_text(json.dumps({"api": "127.0.0.1:1"}))
    old = read_stack(path)
    assert old is not None and old.apis == ["127.0.0.1:1"]
    for garbage in ('"x"', "[1]", '[""]'):
        path.write_text(f'{{"api": "127.0.0.1:1", "apis": {garbage}}}')
        with pytest.raises(BadStackFile, match="apis"):
            read_stack(path)


def test_the_etcd_identity_reads_back_as_a_stores_tls(tmp_path: Path) -> None:
    files = {"ca": "/s/tls/ca.pem", "cert": "/s/tls/role-launcher.pem", "key": "/s/tls/role-launcher-key.pem"}
    write_stack(stack_path(tmp_path), replace(INFO, etcd_tls=files))
    back = read_stack(stack_path(tmp_path))
    assert back is not None and back.etcd_client_tls() == EtcdTls(
        Path(files["ca"]), Path(files["cert"]), Path(files["key"])
    )
    assert INFO.etcd_client_tls() is None  # a plaintext etcd
