"""The stack's CA: chains verify, SANs and usages are right, keys are private, files are kept while valid."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.launcher.certs import (
    API_CERT,
    CA_KEY,
    RENEW_BEFORE,
    ROLES,
    common_name_of,
    ensure_stack_tls,
    issue_cert,
    make_ca,
    role_files,
    still_good,
    write_pair,
)

SANS = ["localhost", "127.0.0.1", "::1", "box.example"]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans_of(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def usages_of(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_a_fresh_state_dir_gets_a_ca_and_certificates_it_signed(tmp_path: Path) -> None:
    made = ensure_stack_tls(tmp_path, SANS)
    ca = load(made.ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca.verify_directly_issued_by(ca)
    for files in (made.api, made.etcd, *made.roles.values()):
        assert files.ca == made.ca
        cert = load(files.cert)
        cert.verify_directly_issued_by(ca)  # raises if the chain does not verify
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        dns, ips = sans_of(cert)
        assert {"localhost", "box.example"} <= dns and {"127.0.0.1", "::1"} <= ips
    assert usages_of(load(made.api.cert)) == {ExtendedKeyUsageOID.SERVER_AUTH}
    both = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert all(usages_of(load(files.cert)) == both for files in (made.etcd, *made.roles.values()))


def test_each_role_has_its_own_identity_named_by_its_common_name(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "internal.pem").write_bytes(b"an earlier version's shared identity")
    made = ensure_stack_tls(tmp_path, SANS)
    assert set(made.roles) == set(ROLES) == {"api", "scheduler", "compute", "servicegroup", "launcher"}
    assert {role: common_name_of(load(files.cert)) for role, files in made.roles.items()} == {r: r for r in ROLES}
    assert len({files.key.read_bytes() for files in made.roles.values()}) == len(ROLES)  # keys not shared
    assert common_name_of(load(made.api.cert)) not in ROLES  # the public certificate is no role
    assert not (tmp_path / "tls" / "internal.pem").exists()


def test_keys_are_readable_by_their_owner_only_and_the_directory_is_private(tmp_path: Path) -> None:
    made = ensure_stack_tls(tmp_path, SANS)
    directory = tmp_path / "tls"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for key in (directory / CA_KEY, made.api.key, made.roles["compute"].key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.ca.stat().st_mode) == 0o600
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_valid_files_are_kept_across_restarts_and_a_widened_key_is_put_right(tmp_path: Path) -> None:
    first = ensure_stack_tls(tmp_path, SANS)
    before = {p: p.read_bytes() for p in (first.ca, first.api.cert, first.roles["compute"].cert)}
    first.roles["compute"].key.chmod(0o644)
    second = ensure_stack_tls(tmp_path, SANS)
    assert {p: p.read_bytes() for p in (second.ca, second.api.cert, second.roles["compute"].cert)} == before
    assert stat.S_IMODE(second.roles["compute"].key.stat().st_mode) == 0o600


def test_a_new_ca_means_new_leaf_certificates(tmp_path: Path) -> None:
    first = ensure_stack_tls(tmp_path, SANS)
    old_api = first.api.cert.read_bytes()
    (tmp_path / "tls" / CA_KEY).unlink()
    second = ensure_stack_tls(tmp_path, SANS)
    assert second.api.cert.read_bytes() != old_api
    load(second.api.cert).verify_directly_issued_by(load(second.ca))


def test_a_certificate_missing_a_wanted_name_or_near_its_end_is_made_again(tmp_path: Path) -> None:
    ensure_stack_tls(tmp_path, SANS)
    api = tmp_path / "tls" / API_CERT
    old = api.read_bytes()
    ensure_stack_tls(tmp_path, [*SANS, "other.example"])
    assert api.read_bytes() != old
    assert "other.example" in sans_of(load(api))[0]

    ca_key, ca = make_ca()
    _, short = issue_cert(ca_key, ca, "short", SANS, client=False, days=1)
    assert still_good(short, ca, SANS) is False  # expires within RENEW_BEFORE
    _, good = issue_cert(ca_key, ca, "good", SANS, client=False)
    assert still_good(good, ca, SANS) and not still_good(good, make_ca()[1], SANS)
    assert good.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE


def test_a_garbled_or_mismatched_pair_is_replaced(tmp_path: Path) -> None:
    made = ensure_stack_tls(tmp_path, SANS)
    made.roles["compute"].cert.write_bytes(b"not a certificate")
    ensure_stack_tls(tmp_path, SANS)
    load(made.roles["compute"].cert).verify_directly_issued_by(load(made.ca))
    ca_key, ca = make_ca()
    other_key, other = issue_cert(ca_key, ca, "x", SANS, client=True)
    write_pair(
        tmp_path / "tls" / "x.pem", made.roles["compute"].key, other_key, other
    )  # role-compute.pem's key replaced
    ensure_stack_tls(tmp_path, SANS)  # the key no longer matches role-compute.pem: both made again
    key = serialization.load_pem_private_key(made.roles["compute"].key.read_bytes(), password=None)
    assert load(tmp_path / "tls" / role_files("compute")[0]).public_key() == key.public_key()
    assert key.public_key() != other_key.public_key()


@pytest.mark.parametrize("name", ["127.0.0.1", "::1"])
def test_ip_addresses_become_ip_sans(name: str) -> None:
    ca_key, ca = make_ca()
    _, cert = issue_cert(ca_key, ca, "x", [name], client=False)
    assert sans_of(cert)[1] == {str(ipaddress.ip_address(name))}
