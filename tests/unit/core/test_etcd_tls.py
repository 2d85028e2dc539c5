"""etcd client TLS: a Store reaches an etcd that serves https and asks for client certificates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.config import CommonSettings
from services.core.etcd import EtcdTls, Store
from services.launcher.certs import ensure_stack_tls
from tests.support.etcd_server import EtcdServer, start_etcd


@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EtcdServer, Path]]:
    made = ensure_stack_tls(tmp_path_factory.mktemp("etcd-tls"), ["localhost", "127.0.0.1"])
    server = start_etcd(tls=made.etcd)  # etcd's certificate serves client and peer URLs
    yield server, made.ca
    server.stop()


async def test_a_store_with_the_ca_and_a_client_certificate_reads_and_writes(
    tls_etcd: tuple[EtcdServer, Path],
) -> None:
    server, ca = tls_etcd
    tls_dir = ca.parent
    settings = CommonSettings(
        etcd=[server.client_url], etcd_ca=ca, etcd_cert=tls_dir / "role-api.pem", etcd_key=tls_dir / "role-api-key.pem"
    )
    assert server.client_url.startswith("https://")
    store = Store(settings.etcd, "/tls-test/", settings.etcd_tls())
    await store.connect(wait_s=10)
    try:
        await store.put("k", b"v")
        kv = await store.get("k")
        assert kv is not None and kv.value == b"v"
        assert await store.swap("k", b"w", kv.mod_revision)
    finally:
        await store.delete_prefix("")
        await store.close()


async def test_a_store_without_a_client_certificate_is_refused(tls_etcd: tuple[EtcdServer, Path]) -> None:
    server, ca = tls_etcd
    store = Store([server.client_url], "/tls-test/", EtcdTls(ca))
    with pytest.raises(ConnectionError, match="unreachable"):
        await store.connect(wait_s=1)
    await store.close()


def test_an_https_url_without_a_ca_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="etcd_ca"):
        Store(["https://127.0.0.1:2379"])
