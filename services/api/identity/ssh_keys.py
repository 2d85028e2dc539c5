"""OpenSSH public keys as a user imports them: one authorized_keys line, checked and fingerprinted.

The line is ``<type> <base64 blob> [comment]``. The blob is decoded, its own type string must be
the line's type, and ``cryptography`` loads it (so an RSA modulus, an Ed25519 key or an ECDSA
point that is not on its curve is refused). Only the types cloud-init and today's OpenSSH accept
by default are taken: no DSA, no certificates, no security-key (sk-) types.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from services.api.validation import PUBLIC_KEY_MAX

RSA_MIN_BITS = 2048
TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


class BadKey(ValueError):
    """Why a public key is refused, in words a user can act on."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint, as ``ssh-keygen -l`` prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    @property
    def line(self) -> str:
        """The key as one authorized_keys line (the blob re-encoded, single spaces)."""
        encoded = base64.b64encode(self.blob).decode()
        return f"{self.type} {encoded} {self.comment}" if self.comment else f"{self.type} {encoded}"


def blob_type(blob: bytes) -> str:
    """The type string the wire format starts with (a uint32 length, then that many bytes)."""
    if len(blob) < 4:
        raise BadKey("the key data is too short to be an SSH key")
    (length,) = struct.unpack(">I", blob[:4])
    if length > 64 or len(blob) < 4 + length:
        raise BadKey("the key data does not start with a key type")
    try:
        return blob[4 : 4 + length].decode("ascii")
    except UnicodeDecodeError:
        raise BadKey("the key data does not start with a key type") from None


def parse(text: str) -> PublicKey:
    """The key in ``text`` (surrounding whitespace ignored); BadKey saying what is wrong."""
    if len(text) > PUBLIC_KEY_MAX:
        raise BadKey(f"must be at most {PUBLIC_KEY_MAX} characters, got {len(text)}")
    line = text.strip()
    if not line:
        raise BadKey("is required")
    if "\n" in line or "\r" in line:
        raise BadKey("must be one line: '<type> <base64> [comment]'")
    parts = line.split(None, 2)
    key_type = parts[0]
    if key_type not in TYPES:
        raise BadKey(f"unsupported key type {key_type[:40]!r}; expected one of {', '.join(TYPES)}")
    if len(parts) < 2:
        raise BadKey(f"has no key data after {key_type!r}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise BadKey("the key data is not valid base64") from None
    inner = blob_type(blob)
    if inner != key_type:
        raise BadKey(f"the key data is a {inner[:40]!r} key, not {key_type!r}")
    _load(key_type, blob)
    return PublicKey(key_type, blob, parts[2].strip() if len(parts) > 2 else "")


def _load(key_type: str, blob: bytes) -> None:
    try:
        key = load_ssh_public_key(key_type.encode() + b" " + base64.b64encode(blob))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BadKey(f"is not a valid {key_type} key ({exc})") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < RSA_MIN_BITS:
        raise BadKey(f"RSA keys must have at least {RSA_MIN_BITS} bits, got {key.key_size}")
