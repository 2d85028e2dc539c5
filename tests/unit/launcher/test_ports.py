"""Local etcd ports: remembered in ports.json and reused while free."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from services.launcher.etcd_proc import EtcdPorts, choose_ports, load_ports
from services.launcher.ports import free_ports, port_is_free


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3
    assert all(port_is_free(p) for p in ports)


def test_a_listening_port_is_not_free() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not port_is_free(s.getsockname()[1])


def test_ports_are_chosen_once_then_reused(tmp_path: Path) -> None:
    first = choose_ports(tmp_path)
    assert load_ports(tmp_path / "ports.json") == first
    assert choose_ports(tmp_path) == first


def test_taken_ports_are_replaced_and_remembered(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        (tmp_path / "ports.json").write_text(json.dumps({"client": taken, "peer": free_ports(1)[0]}))
        chosen = choose_ports(tmp_path)
    assert chosen.client != taken
    assert load_ports(tmp_path / "ports.json") == chosen


def test_an_unreadable_ports_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "ports.json").write_text("nonsense")
    assert load_ports(tmp_path / "ports.json") is None
    assert isinstance(choose_ports(tmp_path), EtcdPorts)
