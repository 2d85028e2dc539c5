"""The public key parser: the accepted types with OpenSSH's own fingerprints, and every refusal."""

from __future__ import annotations

import base64
import struct

import pytest

from services.api.identity.ssh_keys import BadKey, parse
from services.api.validation import PUBLIC_KEY_MAX
from tests.support import ssh_keys as keys


def wire(*parts: bytes) -> str:
    """An SSH wire-format blob of length-prefixed strings, base64-encoded."""
    return base64.b64encode(b"".join(struct.pack(">I", len(p)) + p for p in parts)).decode()


@pytest.mark.parametrize("kind", sorted(keys.VALID))
def test_valid_keys_and_their_openssh_fingerprints(kind: str) -> None:
    line, fingerprint = keys.VALID[kind]
    key = parse(f"{line} alice@laptop")
    assert key.type == kind.partition("/")[0]
    assert key.fingerprint == fingerprint
    assert key.comment == "alice@laptop"
    assert key.line == f"{line} alice@laptop"


def test_without_comment_and_with_surrounding_whitespace() -> None:
    key = parse(f"  {keys.ED25519}\n")
    assert key.comment == ""
    assert key.line == keys.ED25519


def test_comment_with_spaces_is_kept_and_spacing_normalised() -> None:
    kind, data = keys.ED25519.split()
    assert parse(f"{kind}   {data}   my  key ").line == f"{kind} {data} my  key"


def bad(text: str) -> str:
    with pytest.raises(BadKey) as info:
        parse(text)
    return str(info.value)


def test_short_rsa_refused() -> None:
    assert bad(keys.RSA1024) == "RSA keys must have at least 2048 bits, got 1024"


@pytest.mark.parametrize("line", [keys.DSA, "ssh-dss AAAA", "sk-ssh-ed25519@openssh.com AAAA", "rsa AAAA",
                                  'command="ls" ' + keys.ED25519, "ssh-ed25519-cert-v01@openssh.com AAAA"])  # fmt: skip
def test_unsupported_types_refused(line: str) -> None:
    assert bad(line).startswith("unsupported key type")


@pytest.mark.parametrize("data", ["not base64!", "AAAA=AAA", "AAAAC3NzaC1lZDI1NTE5AAAAIGXlb1B5y9D6Lm"])
def test_bad_base64_refused(data: str) -> None:
    assert bad(f"ssh-ed25519 {data}") == "the key data is not valid base64"


def test_type_mismatch_refused() -> None:
    rsa_data = keys.RSA2048.split()[1]
    assert bad(f"ssh-ed25519 {rsa_data}") == "the key data is a 'ssh-rsa' key, not 'ssh-ed25519'"
    p384_data = keys.ECDSA384.split()[1]
    assert "'ecdsa-sha2-nistp384' key, not 'ecdsa-sha2-nistp256'" in bad(f"ecdsa-sha2-nistp256 {p384_data}")


def test_truncated_or_padded_key_material_refused() -> None:
    blob = base64.b64decode(keys.ED25519.split()[1])
    short = base64.b64encode(blob[:-1]).decode()
    long = base64.b64encode(blob + b"\x00\x00\x00\x00").decode()
    assert bad(f"ssh-ed25519 {short}").startswith("is not a valid ssh-ed25519 key")
    assert bad(f"ssh-ed25519 {long}").startswith("is not a valid ssh-ed25519 key")


def test_ecdsa_point_off_the_curve_refused() -> None:
    blob = bytearray(base64.b64decode(keys.ECDSA256.split()[1]))
    blob[-1] ^= 1
    data = base64.b64encode(bytes(blob)).decode()
    assert bad(f"ecdsa-sha2-nistp256 {data}").startswith("is not a valid ecdsa-sha2-nistp256 key")


def test_wire_format_without_a_type_refused() -> None:
    assert bad("ssh-ed25519 AAAA") == "the key data is too short to be an SSH key"
    huge_length = base64.b64encode(b"\xff\xff\xff\xffxx").decode()
    assert bad(f"ssh-ed25519 {huge_length}") == "the key data does not start with a key type"
    not_ascii = wire(b"\xff\xfe")
    assert bad(f"ssh-ed25519 {not_ascii}") == "the key data does not start with a key type"


def test_empty_missing_data_multiline_and_oversized_refused() -> None:
    assert bad("") == "is required"
    assert bad("   \n") == "is required"
    assert bad("ssh-ed25519") == "has no key data after 'ssh-ed25519'"
    assert bad(f"{keys.ED25519}\n{keys.RSA2048}").startswith("must be one line")
    assert bad(keys.ED25519 + " " + "x" * PUBLIC_KEY_MAX).startswith("must be at most 16384 characters")


def test_fingerprint_is_over_the_blob_only() -> None:
    assert parse(keys.ED25519 + " a").fingerprint == parse(keys.ED25519 + " b").fingerprint
