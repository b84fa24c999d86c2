"""Ed25519 signing in pure Python, for tests on both runtimes (never for real keys).

MicroPython has no `cryptography`, so the dual-runtime tests sign their own tokens with
this: RFC 8032 section 5.1.6 on top of firmware/ed25519.py's point arithmetic. It is
checked against the RFC 8032 vectors in tests/firmware/test_ed25519.py (a deterministic
signature must match the RFC's byte for byte). Not constant time: test keys only.
"""

from firmware import ed25519 as ed
from firmware import sha512


def _scalar_mult_base(scalar):
    """[scalar]B, in the verifier's working point (use it before the next call)."""
    ed._naf(scalar, ed._S_DIGITS)
    ed._naf(0, ed._K_DIGITS)
    ed._base_table()
    P = ed._reset(ed._ACC)
    ed._chain(P, ed._S_DIGITS, ed._K_DIGITS)
    ed._release(ed._BASE_TABLE, None)
    return P


def _clamped(seed):
    h = sha512.digest(seed)
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def public_key(seed):
    """The 32-byte public key of a 32-byte seed (RFC 8032 5.1.5)."""
    return ed._encode(_scalar_mult_base(_clamped(seed)[0]))


class Signer:
    """A test key: .public_key (32 bytes) and .sign(message) -> 64 bytes."""

    def __init__(self, seed):
        self.seed = bytes(seed)
        a, prefix = _clamped(self.seed)
        self.scalar = a
        self.prefix = prefix
        self.public_key = ed._encode(_scalar_mult_base(a))

    def sign(self, message):
        message = bytes(message)
        r = int.from_bytes(sha512.digest(self.prefix + message), "little") % ed._L
        R = ed._encode(_scalar_mult_base(r))
        k = int.from_bytes(sha512.digest(R + self.public_key + message), "little") % ed._L
        return R + ((r + k * self.scalar) % ed._L).to_bytes(32, "little")


def seed_of(label):
    """A throwaway 32-byte seed from a label (SHA-512 of it, first half)."""
    return sha512.digest(b"lci777 test key " + label.encode())[:32]
