"""Ed25519 on the host, with the device's strict rules: signatures verify with `cryptography`.

    valid_public_key(raw) -> bool      32 bytes, a canonical encoding of a curve point that
                                       is not of small order (what the device accepts)
    verify(public_key, message, signature) -> bool

The device (firmware/ed25519.py) refuses a non-canonical key, a key of small order and a
signature whose s is not below the group order; `cryptography` (OpenSSL) checks the
signature itself. The key check decodes the point with integer arithmetic (RFC 8032
5.1.3): OpenSSL accepts any 32 bytes as a public key.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # the group order
_D = -121665 * pow(121666, -1, _P) % _P
_Y8 = 0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7
# y of every point of small order (8P = identity): the identity (1), order 2 (-1),
# order 4 (0) and order 8 (±_Y8); both x of each
_SMALL_ORDER_Y = frozenset((1, _P - 1, 0, _Y8, _P - _Y8))


def valid_public_key(raw) -> bool:
    """True if `raw` is a canonical encoding of a curve point that is not of small order."""
    try:
        raw = bytes(raw)
    except (TypeError, ValueError):
        return False
    if len(raw) != 32:
        return False
    y = int.from_bytes(raw, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P or y in _SMALL_ORDER_Y:
        return False
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    if x2 == 0:
        return not sign  # x = 0: "-0" is not canonical
    return pow(x2, (_P - 1) // 2, _P) == 1  # x^2 has a square root: the point is on the curve


def verify(public_key, message, signature) -> bool:
    """True if `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    try:
        public_key, message, signature = bytes(public_key), bytes(message), bytes(signature)
    except (TypeError, ValueError):
        return False
    if len(signature) != 64 or int.from_bytes(signature[32:], "little") >= _L:
        return False
    if not valid_public_key(public_key):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
