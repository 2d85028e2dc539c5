"""etcd out of space (real etcd with a tiny ``--quota-backend-bytes``): a refused write is a wait
(``is_store_full``, ``is_store_outage``), it reaches clients as UNAVAILABLE naming the cause, the
alarm can be read and described, and compacting, defragmenting and disarming get etcd writing again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status.rpc_status import GRPC_DETAILS_METADATA_KEY

from services.core.errors import (
    FULL_RETRY_AFTER_S,
    STATE_STORE_FULL,
    STATE_STORE_FULL_MESSAGE,
    QuotaExceeded,
    Unavailable,
    from_rpc_error,
    is_transient,
    to_status,
)
from services.core.etcd import Store, is_store_full, is_store_outage, is_unavailable
from services.core.etcd_maint import NOSPACE, Alarm, Member, describe
from services.core.etcd_members import ClusterMaintenance
from services.core.interceptors import RequestInterceptor, as_status_error
from tests.support.etcd_fill import FILLER, fill_until_full, refused_put
from tests.support.etcd_server import EtcdServer, start_etcd

QUOTA_BYTES = 8 << 20


def nospace_error() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                details="etcdserver: mvcc: database space exceeded")  # fmt: skip


@pytest.fixture
def tiny_etcd() -> Iterator[EtcdServer]:
    server = start_etcd(extra_args=["--quota-backend-bytes", str(QUOTA_BYTES)])
    yield server
    server.stop()


@pytest.fixture
async def full_store(tiny_etcd: EtcdServer) -> AsyncIterator[Store]:
    store = Store([tiny_etcd.client_url], prefix="/full/")
    await store.connect()
    await fill_until_full(store)
    yield store
    await store.close()


# ---- pure: what the error is taken for ---------------------------------------------------------
def test_nospace_is_a_wait_and_not_the_callers_quota() -> None:
    exc = nospace_error()
    assert is_store_full(exc) and is_unavailable(exc) and is_store_outage(exc)
    err = as_status_error(exc)
    assert isinstance(err, Unavailable) and not isinstance(err, QuotaExceeded) and is_transient(err)
    assert err.reason == STATE_STORE_FULL and err.retry_after_s == FULL_RETRY_AFTER_S
    assert "out of space" in err.message and "NOSPACE" in err.message


def test_another_resource_exhausted_is_not_nospace() -> None:
    too_big = grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   details="grpc: received message larger than max")  # fmt: skip
    assert not is_store_full(too_big) and not is_store_outage(too_big)


def test_the_status_carries_the_reason_and_a_retry_hint() -> None:
    packed = to_status(as_status_error(nospace_error()) or Unavailable("x"))
    assert packed.code == grpc.StatusCode.UNAVAILABLE and packed.details == STATE_STORE_FULL_MESSAGE
    proto = next(v for k, v in packed.trailing_metadata if k == GRPC_DETAILS_METADATA_KEY)
    reasons, delays = [], []
    for detail in status_pb2.Status.FromString(proto).details:
        info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reasons.append(info.reason)
        elif detail.Unpack(retry):
            delays.append(retry.retry_delay.ToNanoseconds() / 1e9)
    assert reasons == [STATE_STORE_FULL] and delays == [FULL_RETRY_AFTER_S]


def test_an_alarm_is_described_by_member_name_and_says_what_to_do() -> None:
    members = [Member(7, "stratus", ("http://127.0.0.1:2379",))]
    text = describe(Alarm(7, NOSPACE), members)
    assert text.startswith("etcd member stratus (http://127.0.0.1:2379) is out of space")
    assert "stratus etcd disarm" in text
    assert describe(Alarm(255, NOSPACE), []).startswith("etcd member ff is out of space")


# ---- a real etcd at its quota --------------------------------------------------------------------
async def test_a_full_etcd_refuses_writes_with_nospace_and_raises_the_alarm(full_store: Store) -> None:
    exc = await refused_put(full_store)
    assert is_store_full(exc) and is_store_outage(exc)
    alarms = await full_store.alarms()
    assert [a.kind for a in alarms] == [NOSPACE]
    members = await full_store.members()
    assert [m.id for m in members] == [alarms[0].member_id]
    assert "is out of space" in describe(alarms[0], members)
    assert await full_store.get(f"{FILLER}00000") is not None  # reads go on


async def test_compact_defragment_disarm_gets_etcd_writing_again(full_store: Store) -> None:
    cluster = ClusterMaintenance(full_store)
    assert [a.kind for a in await cluster.disarm()] == [NOSPACE]  # nothing freed: writes raise it again
    await fill_until_full(full_store, most=4)
    assert [a.kind for a in await full_store.alarms()] == [NOSPACE]
    await full_store.delete_prefix(FILLER)  # deletes are still taken
    await cluster.compact_now()
    [(member, before)] = await cluster.statuses()
    after = await cluster.defragment(member)
    assert after.db_size < before.db_size and after.db_size < QUOTA_BYTES
    assert [a.kind for a in await cluster.disarm()] == [NOSPACE]
    assert await full_store.alarms() == []
    await full_store.put("probe", b"ok")


# ---- over the wire: what a client of a Stratus server gets --------------------------------------
def _identity(b: bytes) -> bytes:
    return b


async def test_a_client_gets_unavailable_naming_the_cause(full_store: Store) -> None:
    async def write(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await full_store.put("from-a-handler", request)
        return b""

    kw: dict[str, Any] = {"request_deserializer": _identity, "response_serializer": _identity}
    handler = grpc.method_handlers_generic_handler(
        "t.Full", {"Write": grpc.unary_unary_rpc_method_handler(write, **kw)}
    )
    server = grpc.aio.server(interceptors=[RequestInterceptor()])
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary("/t.Full/Write", _identity, _identity)(b"x", timeout=10)
    finally:
        await server.stop(None)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "out of space" in (caught.value.details() or "")
    err = from_rpc_error(caught.value)
    assert err.reason == STATE_STORE_FULL and isinstance(err, Unavailable) and err.retry_after_s == FULL_RETRY_AFTER_S
