"""A stack's own certificate authority, made with ``cryptography`` (ECDSA P-256, SHA-256).

``stratus up`` (unless ``--insecure``) keeps in ``<state_dir>/tls/``: ``ca.pem``/``ca-key.pem``;
``api.pem``/``api-key.pem`` (the public port: server auth only); one identity per role,
``role-<role>.pem``/``role-<role>-key.pem``, whose common name is the role (``api``,
``scheduler``, ``compute``, ``servicegroup``, ``launcher``): each process's certificate as server
and as client, towards its peers and etcd (``services/core/callers.py`` checks the role); and
``etcd.pem``/``etcd-key.pem``, the local etcd's (client and peer URLs). Every file is mode 0600, the
directory 0700. Files still valid for ``RENEW_BEFORE`` are kept across restarts; anything else is
made afresh.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.core.tls import TlsFiles

CA_DAYS = 3650
CERT_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)
TLS_DIR = "tls"
CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
API_CERT, API_KEY = "api.pem", "api-key.pem"
ETCD_CERT, ETCD_KEY = "etcd.pem", "etcd-key.pem"
ROLES = ("api", "scheduler", "compute", "servicegroup", "launcher")
STALE = ("internal.pem", "internal-key.pem")  # the one shared identity of earlier versions

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class StackTls:
    """What ``ensure_stack_tls`` made or kept."""

    ca: Path
    api: TlsFiles
    roles: dict[str, TlsFiles]  # role -> its identity (client and server)
    etcd: TlsFiles

    def identity(self, role: str) -> TlsFiles:
        return self.roles[role]


# ---- making certificates ----------------------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stratus"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


def _ski(key: Key) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signatures (ECDSA handshakes); certificate and CRL signing for a CA."""
    return x509.KeyUsage(
        digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def make_ca(common_name: str = "Stratus local CA", days: int = CA_DAYS) -> tuple[Key, x509.Certificate]:
    """A new self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(_ski(key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def issue_cert(
    ca_key: Key,
    ca_cert: x509.Certificate,
    common_name: str,
    sans: Sequence[str],
    *,
    client: bool,
    days: int = CERT_DAYS,
) -> tuple[Key, x509.Certificate]:
    """A leaf certificate signed by the CA for ``sans`` (host names and IP addresses): always for
    server auth, and for client auth too when ``client``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, *([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(_san(sans), critical=False)
        .add_extension(_ski(key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(ca_key)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def default_sans() -> list[str]:
    """The names a local stack's ports answer to: loopback and this machine's host name."""
    return ["localhost", "127.0.0.1", "::1", socket.gethostname()]


# ---- files ------------------------------------------------------------------------------------
def write_file(path: Path, data: bytes, mode: int) -> None:
    """Writes ``data`` beside ``path`` with ``mode`` and renames it over: readers see all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)  # O_CREAT's mode is masked by the umask and ignored for an existing file
    tmp.replace(path)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_pair(cert_path: Path, key_path: Path, key: Key, cert: x509.Certificate) -> None:
    write_file(key_path, key_pem(key), 0o600)
    write_file(cert_path, cert_pem(cert), 0o600)  # public, but nobody else's business


def _load(cert_path: Path, key_path: Path) -> tuple[Key, x509.Certificate] | None:
    """The pair if both files are readable and the key is the certificate's; else None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None
    return key, cert


def still_good(cert: x509.Certificate, issuer: x509.Certificate | None = None, sans: Sequence[str] = ()) -> bool:
    """Valid for at least ``RENEW_BEFORE`` more, signed by ``issuer`` if given, naming every one of ``sans``."""
    now = _now()
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc < now + RENEW_BEFORE:
        return False
    if issuer is not None:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
    if sans:
        try:
            present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        return all(entry in present for entry in _san(sans))
    return True


def common_name_of(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _ensure_leaf(
    directory: Path,
    names: tuple[str, str],
    ca: tuple[Key, x509.Certificate],
    sans: Sequence[str],
    *,
    client: bool,
    common_name: str,
) -> TlsFiles:
    cert_path, key_path = directory / names[0], directory / names[1]
    pair = _load(cert_path, key_path)
    if pair is None or not still_good(pair[1], ca[1], sans) or common_name_of(pair[1]) != common_name:
        key, cert = issue_cert(ca[0], ca[1], common_name, sans, client=client)
        write_pair(cert_path, key_path, key, cert)
    else:
        os.chmod(key_path, 0o600)  # a key someone widened is put right at each start
    return TlsFiles(directory / CA_CERT, cert_path, key_path)


def ensure_stack_tls(state_dir: Path, sans: Sequence[str] | None = None) -> StackTls:
    """The stack's CA and certificates in ``<state_dir>/tls``: kept while valid, else made afresh
    (a new CA means new leaf certificates too)."""
    directory = state_dir / TLS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    names = list(sans) if sans is not None else default_sans()
    ca = _load(directory / CA_CERT, directory / CA_KEY)
    if ca is None or not still_good(ca[1]):
        ca = make_ca()
        write_pair(directory / CA_CERT, directory / CA_KEY, *ca)
    else:
        os.chmod(directory / CA_KEY, 0o600)
    api = _ensure_leaf(directory, (API_CERT, API_KEY), ca, names, client=False, common_name="stratus api")
    roles = {
        role: _ensure_leaf(directory, role_files(role), ca, names, client=True, common_name=role) for role in ROLES
    }
    etcd = _ensure_leaf(directory, (ETCD_CERT, ETCD_KEY), ca, names, client=True, common_name="etcd")
    for stale in STALE:
        (directory / stale).unlink(missing_ok=True)
    return StackTls(directory / CA_CERT, api, roles, etcd)


def role_files(role: str) -> tuple[str, str]:
    """The certificate and key file names of ``role``'s identity."""
    return f"role-{role}.pem", f"role-{role}-key.pem"
