"""The bytes a signer signs: token and certificate bodies, the host's side of protocol/tokens.py.

    certificate_body(key_id, public_key, scopes, issued, expires) -> bytes
    token_body(root_key_id, key_id, certificate, serial, action, args, issued, not_before,
               expires, token_id, session_nonce=None) -> bytes
    encode_args(action, args) -> bytes      the compact JSON of a token's arguments

Append the signature to finish one (host_tools/tokens.py and host_tools/keys.py sign). Each
refuses what a device would refuse to parse (ValueError or TokenError). The device only
parses (protocol/tokens.py): a board gets none of this module (the tests build tokens with
it on both runtimes).
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import json
import struct

from protocol.tokens import (
    MAGIC,
    ROOT_KEY_ID,
    SCOPES,
    TOKEN_ID_BYTES,
    U32_MAX,
    VERSION,
    check_args,
)

# the byte format's numbers, as protocol/tokens.py parses them (the round-trip tests tie the two)
_KIND_TOKEN = const(1)
_KIND_CERTIFICATE = const(2)
_ROOT_ID_BYTES = const(8)
_PUBLIC_KEY_BYTES = const(32)
_SESSION_NONCE_BYTES = const(16)
_MAX_KEY_ID = const(32)


def scope_bits(scopes):
    """The certificate's scope byte for an iterable of scope names (ValueError on unknown)."""
    bits = 0
    for name in scopes:
        if name not in SCOPES:
            raise ValueError("unknown scope %r (scopes: %s)" % (name, ", ".join(SCOPES)))
        bits |= 1 << SCOPES.index(name)
    return bits


def _text(value, limit, what):
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if len(raw) > limit:
        raise ValueError("%s longer than %d bytes" % (what, limit))
    return bytes([len(raw)]) + raw


def _blob(raw):
    raw = bytes(raw)
    if len(raw) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return struct.pack("<H", len(raw)) + raw


def _u32(value, what):
    if type(value) is not int or value < 0 or value > U32_MAX:
        raise ValueError("%s must be an integer 0..%d, not %r" % (what, U32_MAX, value))
    return struct.pack("<I", value)


def check_key_id(key_id):
    """ValueError unless key_id is 1..32 characters of A-Z a-z 0-9 . _ -"""
    if not isinstance(key_id, str) or not 0 < len(key_id) <= _MAX_KEY_ID:
        raise ValueError("a key id is 1..%d characters" % _MAX_KEY_ID)
    for ch in key_id:
        if not (ch.isalpha() or ch.isdigit() or ch in "._-") or ord(ch) > 127:
            raise ValueError("key id %r: only A-Z a-z 0-9 . _ -" % key_id)


def certificate_body(key_id, public_key, scopes, issued, expires):
    """The bytes of a certificate that the root signs (append the signature to finish it)."""
    check_key_id(key_id)
    if key_id == ROOT_KEY_ID:
        raise ValueError("a delegated key cannot be called %r" % ROOT_KEY_ID)
    if len(public_key) != _PUBLIC_KEY_BYTES:
        raise ValueError("a public key is 32 bytes")
    if not scopes:
        raise ValueError("a delegated key needs at least one scope")
    return (
        MAGIC
        + bytes([VERSION, _KIND_CERTIFICATE])
        + _text(key_id, _MAX_KEY_ID, "key id")
        + bytes(public_key)
        + bytes([scope_bits(scopes)])
        + _u32(issued, "issued")
        + _u32(expires, "expires")
    )


def encode_args(action, args):
    """Compact JSON of `args`, keys sorted, after checking them against ARGUMENTS.

    (Written out by hand: MicroPython's json.dumps has no sort_keys.)"""
    check_args(action, args)
    out = []
    for name in sorted(args):
        out.append(json.dumps(name) + ":" + json.dumps(args[name]))
    return ("{" + ",".join(out) + "}").encode()


def token_body(root_key_id, key_id, certificate, serial, action, args, issued, not_before, expires, token_id, session_nonce=None):
    """The bytes of a token that the signer signs (append the signature to finish it).

    root_key_id: root_id() of the provider root; certificate: the signer's certificate bytes
    (b"" when the root signs); session_nonce: None or the 16-byte HELLO nonce to bind to.
    """
    if len(root_key_id) != _ROOT_ID_BYTES:
        raise ValueError("a root id is %d bytes" % _ROOT_ID_BYTES)
    check_key_id(key_id)
    if (key_id == ROOT_KEY_ID) != (not certificate):
        raise ValueError("a certificate goes with a delegated key, and only with one")
    if len(token_id) != TOKEN_ID_BYTES:
        raise ValueError("a token id is %d bytes" % TOKEN_ID_BYTES)
    nonce = b"" if session_nonce is None else bytes(session_nonce)
    if len(nonce) not in (0, _SESSION_NONCE_BYTES):
        raise ValueError("a session nonce is %d bytes" % _SESSION_NONCE_BYTES)
    return (
        MAGIC
        + bytes([VERSION, _KIND_TOKEN])
        + bytes(root_key_id)
        + _text(key_id, _MAX_KEY_ID, "key id")
        + _blob(certificate)
        + _text(serial, 255, "serial")
        + _text(action, 255, "action")
        + _blob(encode_args(action, args))
        + _u32(issued, "issued")
        + _u32(not_before, "not_before")
        + _u32(expires, "expires")
        + bytes(token_id)
        + bytes([len(nonce)])
        + nonce
    )
