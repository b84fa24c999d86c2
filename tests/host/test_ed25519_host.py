"""The host's Ed25519 (cryptography plus the device's strict key rules) agrees with the
device's own verifier on keys and signatures, valid and not."""

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware import ed25519 as device
from host_tools import ed25519_host as host

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493


def _encodings():
    """Keys of every kind: small order (both signs), non-canonical y, random bytes."""
    for y in (0, 1, P - 1, host._Y8, P - host._Y8, P, P + 1, 2**255 - 1):
        for sign in (0, 1):
            yield (y | (sign << 255)).to_bytes(32, "little")
    rng = __import__("random").Random(7)
    for _ in range(2000):
        yield rng.randbytes(32)
    yield b"\x01" * 31
    yield b"\x01" * 33


def test_public_key_rules_agree_with_the_device():
    rows = [(raw.hex(), device.valid_public_key(raw), host.valid_public_key(raw)) for raw in _encodings()]
    assert [row for row in rows if row[1] != row[2]] == []
    assert any(row[1] for row in rows) and not all(row[1] for row in rows)


def test_signatures_agree_with_the_device():
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    message = os.urandom(40)
    good = key.sign(message)
    s = int.from_bytes(good[32:], "little")
    cases = {
        "good": (public, message, good),
        "other message": (public, message + b"x", good),
        "flipped R": (public, message, bytes([good[0] ^ 1]) + good[1:]),
        "s + L (malleable)": (public, message, good[:32] + (s + L).to_bytes(32, "little")),
        "short": (public, message, good[:63]),
        "small-order key": ((1).to_bytes(32, "little"), message, good),
        "not bytes": (public, message, None),
    }
    answers = {name: (device.verify(*args), host.verify(*args)) for name, args in cases.items()}
    assert {name: pair for name, pair in answers.items() if pair[0] != pair[1]} == {}
    assert answers["good"] == (True, True)
    assert [name for name, pair in answers.items() if pair[1]] == ["good"]
