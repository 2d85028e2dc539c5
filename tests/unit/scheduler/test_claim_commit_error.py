"""A batch of claims that etcd refused for lack of space (NOSPACE) fails with STATE_STORE_FULL, so
the api's build flow waits for etcd instead of failing the server; other failures stay plain."""

from __future__ import annotations

import grpc
from etcd3aio import EtcdConnectionError

from services.core.errors import STATE_STORE_FULL, Unavailable, is_transient
from services.scheduler.claimer import commit_error


def test_nospace_keeps_its_reason() -> None:
    nospace = grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   details="etcdserver: mvcc: database space exceeded")  # fmt: skip
    err = commit_error(nospace)
    assert err.reason == STATE_STORE_FULL and is_transient(err) and "out of space" in err.message


def test_other_failures_are_a_plain_unavailable() -> None:
    stopping = Unavailable("the scheduler is stopping")
    assert commit_error(stopping) is stopping
    err = commit_error(EtcdConnectionError("KV.Txn failed after 1 attempts: UNAVAILABLE"))
    assert err.reason == "UNAVAILABLE" and err.message.startswith("could not commit the claim")
