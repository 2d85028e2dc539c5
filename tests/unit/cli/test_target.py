"""Finding the stack: flags, then STRATUS_API/STRATUS_TOKEN, then stack.json in the state dir."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.cli import target as cli_target
from services.cli.target import (
    ForeignApi,
    NoStack,
    Target,
    Unreachable,
    accepts,
    reachable,
    resolve_target,
    state_dir_of,
)
from services.core.config import DEFAULT_STATE_DIR
from services.launcher.stackfile import StackInfo, stack_path, write_stack


def make_stack(state_dir: Path, api: str = "127.0.0.1:1111", token: str = "file-token") -> None:
    write_stack(stack_path(state_dir), StackInfo(api, ["http://127.0.0.1:2"], token, "demo", str(state_dir)))


def test_flags_win_over_everything(tmp_path: Path) -> None:
    make_stack(tmp_path)
    env = {"STRATUS_API": "env:1", "STRATUS_TOKEN": "env-token"}
    target = resolve_target("flag:1", "flag-token", tmp_path, env)
    assert (target.api, target.token, target.source) == ("flag:1", "flag-token", "--api")


def test_environment_wins_over_the_stack_file(tmp_path: Path) -> None:
    make_stack(tmp_path)
    env = {"STRATUS_API": "env:1", "STRATUS_TOKEN": "env-token", "STRATUS_STATE_DIR": str(tmp_path)}
    target = resolve_target(None, None, None, env)
    assert (target.api, target.token, target.source) == ("env:1", "env-token", "STRATUS_API")


def test_the_stack_file_fills_what_flags_and_environment_leave_out(tmp_path: Path) -> None:
    make_stack(tmp_path)
    assert resolve_target(None, None, tmp_path, {}).api == "127.0.0.1:1111"
    assert resolve_target(None, None, tmp_path, {}).token == "file-token"
    assert resolve_target(None, "mine", tmp_path, {}).token == "mine"
    with_api = resolve_target("127.0.0.1:1111", None, tmp_path, {})  # the stack's own api, named by hand
    assert (with_api.api, with_api.token) == ("127.0.0.1:1111", "file-token")


def test_the_state_dir_comes_from_the_flag_then_the_environment_then_the_default(tmp_path: Path) -> None:
    assert state_dir_of(tmp_path / "flag", {"STRATUS_STATE_DIR": str(tmp_path / "env")}) == tmp_path / "flag"
    assert state_dir_of(None, {"STRATUS_STATE_DIR": str(tmp_path / "env")}) == tmp_path / "env"
    assert state_dir_of(None, {}) == DEFAULT_STATE_DIR


def test_the_cli_default_state_dir_is_the_services_one() -> None:
    """The CLI keeps its own copy (importing services.core.config loads pydantic): the same path."""
    assert cli_target.DEFAULT_STATE_DIR == DEFAULT_STATE_DIR


def test_the_state_dir_from_the_environment_finds_its_stack_file(tmp_path: Path) -> None:
    make_stack(tmp_path / "b", api="127.0.0.1:2222")
    target = resolve_target(None, None, None, {"STRATUS_STATE_DIR": str(tmp_path / "b")})
    assert target.api == "127.0.0.1:2222"
    assert target.source == str(tmp_path / "b" / "stack.json")


def test_no_stack_anywhere_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(NoStack, match="stratus up"):
        resolve_target(None, None, tmp_path, {})


def test_an_api_without_any_token_is_still_a_target(tmp_path: Path) -> None:
    target = resolve_target("127.0.0.1:9", None, tmp_path, {})
    assert (target.api, target.token) == ("127.0.0.1:9", None)


def test_a_garbled_stack_file_is_reported(tmp_path: Path) -> None:
    stack_path(tmp_path).write_text("{not json")
    with pytest.raises(NoStack, match="not a valid stack file"):
        resolve_target(None, None, tmp_path, {})


def test_the_ca_comes_from_the_flag_then_the_environment_then_the_stack_file(tmp_path: Path) -> None:
    write_stack(stack_path(tmp_path), StackInfo("127.0.0.1:1", [], "t", "d", str(tmp_path), ca_cert="/s/ca.pem"))
    assert resolve_target(None, None, tmp_path, {}).ca_cert == Path("/s/ca.pem")
    env = {"STRATUS_CA_CERT": "/env/ca.pem"}
    assert resolve_target(None, "mine", tmp_path, env).ca_cert == Path("/env/ca.pem")
    assert resolve_target(None, "mine", tmp_path, env, Path("/flag/ca.pem")).ca_cert == Path("/flag/ca.pem")
    full = {"STRATUS_API": "a:1", "STRATUS_TOKEN": "t", **env}  # no stack file needed
    assert resolve_target(None, None, tmp_path / "none", full).ca_cert == Path("/env/ca.pem")


def test_a_stack_without_a_ca_is_plaintext(tmp_path: Path) -> None:
    make_stack(tmp_path)
    assert resolve_target(None, None, tmp_path, {}).ca_cert is None


def test_a_stack_of_replicas_gives_the_others_as_alternates(tmp_path: Path) -> None:
    apis = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
    write_stack(stack_path(tmp_path), StackInfo(apis[0], [], "t", "d", str(tmp_path), apis=apis))
    target = resolve_target(None, None, tmp_path, {})
    assert (target.api, target.alternates) == ("127.0.0.1:1", ("127.0.0.1:2", "127.0.0.1:3"))
    assert resolve_target("127.0.0.1:2", None, tmp_path, {}).alternates == ()  # an api named by hand is that one


def test_the_first_replica_that_accepts_a_connection_is_used() -> None:
    target = Target("a:1", "t", "stack.json", None, ("b:2", "c:3"))
    probed: list[str] = []

    def probe(up: set[str]) -> Callable[[str, float], bool]:
        def accepts(endpoint: str, _timeout: float) -> bool:
            probed.append(endpoint)
            return endpoint in up

        return accepts

    assert reachable(target, 1.0, probe({"a:1", "b:2"})).api == "a:1"
    assert reachable(target, 1.0, probe({"c:3"})).api == "c:3"
    with pytest.raises(Unreachable, match="a:1, b:2, c:3"):  # none answers: said at once, naming them all
        reachable(target, 1.0, probe(set()))
    probed.clear()
    one = Target("a:1", "t", "--api")
    assert reachable(one, 1.0, probe({"a:1"})) == one
    with pytest.raises(Unreachable):
        reachable(one, 1.0, probe(set()))
    assert probed == ["a:1", "a:1"]  # one api is probed too: a dead one is reported before any call
    probed.clear()
    assert reachable(Target("unix:/run/api.sock", "t", "--api"), 1.0, probe(set())).api == "unix:/run/api.sock"
    assert probed == []  # not host:port: left to gRPC


def test_replicas_are_probed_at_once_so_a_dead_stack_is_reported_within_one_timeout() -> None:
    target = Target("a:1", "t", "stack.json", None, ("b:2", "c:3"))

    def slow(_endpoint: str, timeout: float) -> bool:
        time.sleep(timeout)  # a dropped SYN: the probe's whole timeout
        return False

    start = time.monotonic()
    with pytest.raises(Unreachable):
        reachable(target, 0.3, slow)
    assert time.monotonic() - start < 0.8  # not 3 x 0.3


def test_a_closed_port_does_not_accept() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not accepts(f"127.0.0.1:{port}", 1.0)  # bound, not listening
        s.listen()
        assert accepts(f"127.0.0.1:{port}", 1.0)
    assert not accepts("no-port", 1.0)


# A stack's token goes only to that stack's api, over that stack's CA (issue 17, item 4).

REPLICAS = ["127.0.0.1:8774", "127.0.0.1:8775"]


def make_tls_stack(state_dir: Path) -> Path:
    ca = state_dir / "tls" / "ca.pem"
    info = StackInfo(REPLICAS[0], [], "admin-token", "d", str(state_dir), ca_cert=str(ca), apis=REPLICAS)
    write_stack(stack_path(state_dir), info)
    return ca


@pytest.mark.parametrize("api", REPLICAS)
def test_the_stack_token_and_ca_go_to_each_of_its_own_apis(tmp_path: Path, api: str) -> None:
    ca = make_tls_stack(tmp_path)
    for target in (resolve_target(api, None, tmp_path, {}), resolve_target(None, None, tmp_path, {"STRATUS_API": api})):
        assert (target.api, target.token, target.ca_cert) == (api, "admin-token", ca)
    assert resolve_target(None, None, tmp_path, {}).token == "admin-token"  # no api named: the stack's


@pytest.mark.parametrize("api", ["127.0.0.1:9", "localhost:8774", "evil.example:8774"])
def test_the_stack_token_is_not_sent_to_another_address(tmp_path: Path, api: str) -> None:
    make_tls_stack(tmp_path)
    with pytest.raises(ForeignApi, match=r"--token or set STRATUS_TOKEN") as flag:
        resolve_target(api, None, tmp_path, {})
    assert f"{api} (from --api) is not an api of the stack" in str(flag.value)
    assert "admin-token" not in str(flag.value) and "\n" not in str(flag.value)
    with pytest.raises(ForeignApi, match=r"\(from STRATUS_API\).*--token"):
        resolve_target(None, None, None, {"STRATUS_API": api, "STRATUS_STATE_DIR": str(tmp_path)})


@pytest.mark.parametrize("api", ["127.0.0.1:9", REPLICAS[1]])
def test_an_explicit_token_goes_to_any_address(tmp_path: Path, api: str) -> None:
    ca = make_tls_stack(tmp_path)
    own = api in REPLICAS
    for target in (
        resolve_target(api, "mine", tmp_path, {}),
        resolve_target(None, None, tmp_path, {"STRATUS_API": api, "STRATUS_TOKEN": "mine"}),
        resolve_target(api, None, tmp_path, {"STRATUS_TOKEN": "mine"}),
    ):
        assert (target.api, target.token) == (api, "mine")
        assert target.ca_cert == (ca if own else None)  # the stack's CA only for its own api


def test_another_address_takes_only_an_explicit_ca(tmp_path: Path) -> None:
    make_tls_stack(tmp_path)
    target = resolve_target("127.0.0.1:9", "mine", tmp_path, {"STRATUS_CA_CERT": "/other/ca.pem"})
    assert target.ca_cert == Path("/other/ca.pem")


def test_the_stack_token_is_not_sent_over_another_ca(tmp_path: Path) -> None:
    ca = make_tls_stack(tmp_path)
    for api in (None, REPLICAS[0]):
        with pytest.raises(ForeignApi, match=r"the CA /other/ca.pem is not that of the stack.*--token"):
            resolve_target(api, None, tmp_path, {"STRATUS_CA_CERT": "/other/ca.pem"})
    same = tmp_path / "tls" / ".." / "tls" / "ca.pem"  # the stack's own CA, however spelled
    assert resolve_target(None, None, tmp_path, {}, same).token == "admin-token"
    assert resolve_target(None, None, tmp_path, {}, ca).token == "admin-token"
    plain = tmp_path / "plain"
    make_stack(plain, api=REPLICAS[0])
    with pytest.raises(ForeignApi, match=r"it has none: plaintext"):
        resolve_target(None, None, plain, {"STRATUS_CA_CERT": str(ca)})


def test_an_explicit_api_and_token_need_no_readable_stack_file(tmp_path: Path) -> None:
    stack_path(tmp_path).write_text("{not json")
    assert resolve_target("127.0.0.1:9", "mine", tmp_path, {}).token == "mine"
    with pytest.raises(NoStack, match="not a valid stack file"):
        resolve_target("127.0.0.1:9", None, tmp_path, {})
