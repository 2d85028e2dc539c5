"""A stack started with plain ``stratus up`` is closed: every internal method of every process
(found through reflection) refuses a caller without the stack's client certificate, with another
CA's, and with a certificate of a role that may not call it; etcd refuses a client without the
stack's certificate, so nothing can be written into it from outside (no token record, no role)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from services.core.etcd import EtcdTls, Store
from services.core.tls import channel_credentials
from services.launcher.certs import ensure_stack_tls
from tests.support.methods import Method, call, served_methods
from tests.support.stack import Stack

ROLES = ("api", "scheduler", "compute", "servicegroup", "launcher")
# The test's own idea of who may call each internal process (the table in callers.py is what is tested).
MAY_CALL = {"compute": {"api", "compute"}, "scheduler": {"api"}, "servicegroup": {"api"}}


def internal_methods(stack: Stack) -> dict[str, list[Method]]:
    """binary -> the methods its port serves, found through reflection with the api's certificate."""
    out: dict[str, list[Method]] = {}
    for entry in stack.info["services"]:
        if entry["binary"] in MAY_CALL and entry["binary"] not in out:
            with stack.channel_to(entry["endpoint"], "api") as channel:
                out[entry["binary"]] = served_methods(channel)
    # every internal process, each serving something: a test looping over them cannot pass on nothing
    assert set(out) == set(MAY_CALL) and all(out.values()), out
    return out


def endpoint_of(stack: Stack, binary: str) -> str:
    return str(next(s["endpoint"] for s in stack.info["services"] if s["binary"] == binary))


def test_the_default_stack_is_tls_with_a_role_per_process(stack: Stack) -> None:
    assert stack.secure and stack.info["etcd"][0].startswith("https://")
    methods = internal_methods(stack)
    assert set(methods) == set(MAY_CALL)
    assert {m.service for ms in methods.values() for m in ms} == {
        "stratus.compute.v1.Compute", "stratus.scheduler.v1.Scheduler", "stratus.servicegroup.v1.ServiceGroup",
    }  # fmt: skip


def test_every_internal_method_refuses_no_certificate_a_foreign_one_and_the_wrong_role(
    stack: Stack, tmp_path: Path
) -> None:
    foreign = ensure_stack_tls(tmp_path, ["127.0.0.1", "localhost"]).roles["api"]  # another CA's api
    wrong = []
    for binary, methods in internal_methods(stack).items():
        endpoint = endpoint_of(stack, binary)
        channels = {
            "no certificate": grpc.secure_channel(endpoint, channel_credentials(stack.tls_file("ca.pem"))),
            "plaintext": grpc.insecure_channel(endpoint),
            "another CA's": grpc.secure_channel(endpoint, channel_credentials(stack.tls_file("ca.pem"), foreign)),
            **{f"role {r}": stack.channel_to(endpoint, r) for r in ROLES if r not in MAY_CALL[binary]},
        }
        try:
            for method in methods:
                for who, channel in channels.items():
                    code = call(channel, method)
                    expected = (
                        grpc.StatusCode.PERMISSION_DENIED if who.startswith("role") else grpc.StatusCode.UNAVAILABLE
                    )
                    if code != expected:
                        wrong.append(f"{method.path} with {who}: {code.name}, expected {expected.name}")
        finally:
            for channel in channels.values():
                channel.close()
    assert not wrong, "\n".join(wrong)


def test_a_role_that_may_call_gets_through(stack: Stack) -> None:
    """The gate lets its callers by: a harmless read of each process answers the api's certificate."""
    refused = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE)
    for binary, methods in internal_methods(stack).items():
        endpoint = endpoint_of(stack, binary)
        read = next((m for m in methods if m.name.startswith(("Get", "List"))), methods[0])
        for role in MAY_CALL[binary]:
            with stack.channel_to(endpoint, role) as channel:
                code = call(channel, read)
                assert code not in refused, f"{read.path} as {role}: {code.name}"


def etcd_write(stack: Stack, tls: EtcdTls | None) -> str:
    """Tries a write to the stack's etcd: "written", or what refused it."""

    async def run() -> str:
        store = Store(list(stack.info["etcd"]), "/intruder/", tls)
        try:
            await store.connect(wait_s=2)
            await store.put("token", b"admin")
            await store.delete_prefix("")
            return "written"
        except ConnectionError as exc:
            return f"refused: {exc}"
        finally:
            await store.close()

    return asyncio.run(run())


def test_etcd_refuses_a_client_without_the_stacks_certificate(stack: Stack, tmp_path: Path) -> None:
    ca = stack.tls_file("ca.pem")
    assert etcd_write(stack, EtcdTls(ca)).startswith("refused")  # TLS, but no client certificate
    foreign = ensure_stack_tls(tmp_path, ["127.0.0.1"]).roles["launcher"]
    assert etcd_write(stack, EtcdTls(ca, foreign.cert, foreign.key)).startswith("refused")
    with pytest.raises(ValueError, match="etcd_ca"):  # plain http to an https port: not even tried
        Store(list(stack.info["etcd"]))
    plain = [url.replace("https://", "http://") for url in stack.info["etcd"]]
    assert asyncio.run(_plain_refused(plain))
    assert etcd_write(stack, stack.etcd_tls()) == "written"  # the stack's own certificate: in


async def _plain_refused(urls: list[str]) -> bool:
    store = Store(urls, "/intruder/")
    try:
        await store.connect(wait_s=2)
    except ConnectionError:
        return True
    finally:
        await store.close()
    return False
