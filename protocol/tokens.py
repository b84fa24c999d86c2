"""Signed tokens and delegation certificates: the byte format, shared by host and device.

The host encodes (protocol/signing.py builds the bodies, host_tools/tokens.py signs); the
device parses (firmware/authority.py verifies). Normative description: protocol/SPEC.md section 9. All integers little-endian.

Certificate (kind 2): a provider root's signature on a delegated key, its scopes and expiry.

    "L7" | u8 version=1 | u8 kind=2 | s key_id | 32s public_key | u8 scopes (bit i = SCOPES[i])
    | u32 issued | u32 expires | 64s root signature over every byte before it

Token (kind 1): one authorized action for one device.

    "L7" | u8 version=1 | u8 kind=1 | 8s root_id | s key_id | b certificate (empty: root-signed)
    | s serial | s action | b args (compact JSON object) | u32 issued | u32 not_before
    | u32 expires | 16s token_id | u8 n + n bytes session nonce (n = 0 or 16)
    | 64s signature over every byte before it, by the key named by key_id

`s` is u8 length + UTF-8, `b` u16 length + bytes. Times are core-epoch seconds; a token is
valid while not_before <= now < expires; a certificate while now < expires.

Parsing happens in two steps so that no JSON or text from an unauthenticated token is
interpreted: parse_token() checks the binary structure only (strings stay bytes), the
Authority verifies the signatures, then decode_token() decodes the text and the arguments.
Every failure is a TokenError carrying the NACK code (MALFORMED_TOKEN, BAD_ARGUMENT or
NOT_SUPPORTED) and a one-line detail.
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

import json
import struct
from hashlib import sha256

from protocol import errors
from protocol.endpoint import Refused
from protocol.messages import fields

MAGIC = b"L7"
VERSION = 1
_KIND_TOKEN = const(1)
_KIND_CERTIFICATE = const(2)

ROOT_KEY_ID = "root"
SCOPES = ("unlock", "calibrate", "set_time", "billing", "work_order")
# action: the scope a delegated key needs to sign it (the root signs anything)
ACTION_SCOPES = {
    "unlock": "unlock",
    "service": "calibrate",
    "service_close": "calibrate",
    "set_time": "set_time",
    "recall": "billing",
    "lockout": "billing",
    "clear": "billing",
    "work_order": "work_order",
}
# actions that are only valid inside the USB session whose HELLO nonce they carry
SESSION_BOUND = ("service", "set_time")
ORDERS = ("installation", "removal", "exchange", "vehicle_switch", "handset_exchange")
# the causes a billing directive (recall, lockout, clear) may name: a closed set, because a
# directive sets or clears exactly one recall cause of the device (SPEC section 9.4)
DIRECTIVE_CAUSES = ("unpaid_balance",)

# argument kinds: "uint" an integer 0..2^32-1, "text" a string of at most _MAX_TEXT
# characters, "order" one of ORDERS, "cause" one of DIRECTIVE_CAUSES. Each action takes
# exactly these "name kind" pairs (written as text, as message layouts are; arguments()
# lists them).
ARGUMENTS = {
    "unlock": "seconds uint",
    "service": "",
    # downloaded: the log index up to which the technician downloaded and verified the log
    # (the device may then release older segments); 0 when nothing was downloaded
    "service_close": "next_service uint  downloaded uint",
    "set_time": "time uint",
    # seq: the billing directives' order per device (SPEC 9.4): a recall or lockout carries
    # its own number, a clear the number of the recall or lockout it answers
    "recall": "cause cause  days uint  seq uint",
    "lockout": "cause cause  seq uint",
    "clear": "cause cause  seq uint",
    "work_order": "order order  id text  vehicle text",
}
_MAX_TEXT = const(64)

_ROOT_ID_BYTES = const(8)
_PUBLIC_KEY_BYTES = const(32)
_SIGNATURE_BYTES = const(64)
TOKEN_ID_BYTES = 16
_SESSION_NONCE_BYTES = const(16)
MAX_TOKEN_BYTES = 510  # TOKEN's blob in one 512-byte payload (SPEC section 6.8)
U32_MAX = 0xFFFFFFFF


class TokenError(Refused):
    """A token or certificate that cannot be accepted; `code` is its NACK code, `detail` why.

    It is a Refused, so the Authority lets it through to the core as the NACK."""


def _malformed(detail):
    return TokenError(errors.MALFORMED_TOKEN, detail)


def root_id(root_public_key):
    """The 8-byte id of a provider root key, carried by every token: SHA-256(key)[:8]."""
    return sha256(bytes(root_public_key)).digest()[:_ROOT_ID_BYTES]


def scope_names(bits):
    out = []
    for i in range(len(SCOPES)):
        if bits & (1 << i):
            out.append(SCOPES[i])
    return tuple(out)


# ---- parsing (device) --------------------------------------------------------------------
class _Reader:
    """Takes fields off the front of a buffer; any overrun is a TokenError."""

    def __init__(self, data):
        self.data = data
        self.at = 0

    def take(self, n, what):
        end = self.at + n
        if n < 0 or end > len(self.data):
            raise _malformed("ends inside %s" % what)
        raw = self.data[self.at : end]
        self.at = end
        return raw

    def u8(self, what):
        return self.take(1, what)[0]

    def u32(self, what):
        return struct.unpack("<I", self.take(4, what))[0]

    def text(self, what):
        return self.take(self.u8(what), what)

    def blob(self, what):
        return self.take(struct.unpack("<H", self.take(2, what))[0], what)

    def header(self, kind):
        if self.take(2, "magic") != MAGIC:
            raise _malformed("not a token (magic)")
        if self.u8("version") != VERSION:
            raise _malformed("token version not supported")
        if self.u8("kind") != kind:
            raise _malformed("wrong kind of signed object")

    def signature(self):
        signed = self.data[: self.at]
        signature = self.take(_SIGNATURE_BYTES, "signature")
        if self.at != len(self.data):
            raise _malformed("%d bytes after the signature" % (len(self.data) - self.at))
        return signed, signature


class Certificate:
    """A parsed delegation certificate (binary fields; key_id is bytes until decoded)."""

    def __init__(self, raw):
        r = _Reader(raw)
        r.header(_KIND_CERTIFICATE)
        self.raw = raw
        self.key_id = r.text("key id")
        self.public_key = r.take(_PUBLIC_KEY_BYTES, "public key")
        bits = r.u8("scopes")
        if bits >> len(SCOPES):
            raise _malformed("unknown scope bits")
        self.scopes = scope_names(bits)
        self.issued = r.u32("issued")
        self.expires = r.u32("expires")
        self.signed, self.signature = r.signature()


class Token:
    """A parsed token: the binary structure only (see decode_token)."""

    def __init__(self, raw):
        r = _Reader(raw)
        r.header(_KIND_TOKEN)
        self.raw = raw
        self.root_id = r.take(_ROOT_ID_BYTES, "root id")
        self.key_id_raw = r.text("key id")
        cert = r.blob("certificate")
        self.certificate = Certificate(cert) if cert else None
        self.serial_raw = r.text("serial")
        self.action_raw = r.text("action")
        self.args_raw = r.blob("args")
        self.issued = r.u32("issued")
        self.not_before = r.u32("not_before")
        self.expires = r.u32("expires")
        self.token_id = r.take(TOKEN_ID_BYTES, "token id")
        n = r.u8("session nonce")
        if n not in (0, _SESSION_NONCE_BYTES):
            raise _malformed("session nonce length %d" % n)
        self.session_nonce = r.take(n, "session nonce") if n else None
        self.signed, self.signature = r.signature()
        # filled by decode_token()
        self.key_id = None
        self.serial = None
        self.action = None
        self.args = None


def _as_bytes(data):
    try:
        return bytes(data)
    except (TypeError, ValueError):
        raise _malformed("a token is bytes")


def parse_certificate(data):
    """A Certificate from bytes, or TokenError(MALFORMED_TOKEN)."""
    return Certificate(_as_bytes(data))


def parse_token(data):
    """A Token (binary structure checked) from bytes, or TokenError(MALFORMED_TOKEN)."""
    data = _as_bytes(data)
    if len(data) > MAX_TOKEN_BYTES:
        raise _malformed("longer than %d bytes" % MAX_TOKEN_BYTES)
    return Token(data)


def _utf8(raw, what):
    try:
        return raw.decode()
    except UnicodeError:
        raise _malformed("%s is not UTF-8" % what)


def _json_object(raw):
    try:
        value = json.loads(_utf8(raw, "args"))
    except ValueError:
        raise _malformed("args are not JSON")
    if not isinstance(value, dict):
        raise _malformed("args are not a JSON object")
    return value


def _value_fits(kind, value):
    if kind == "uint":
        return type(value) is int and 0 <= value <= U32_MAX
    if kind == "order":
        return isinstance(value, str) and value in ORDERS
    if kind == "cause":
        return isinstance(value, str) and value in DIRECTIVE_CAUSES
    return isinstance(value, str) and len(value) <= _MAX_TEXT


def _unknown_name(schema, args):
    """The first key of `args` that the schema does not name, or None."""
    names = list(args)
    i = 0
    while i < len(names):
        j = 0
        while j < len(schema) and schema[j][0] != names[i]:
            j += 1
        if j == len(schema):
            return names[i]
        i += 1
    return None


def _bad_value(schema, args):
    """The first schema name missing from `args` or of the wrong kind, or None."""
    i = 0
    while i < len(schema):
        name = schema[i][0]
        if name not in args or not _value_fits(schema[i][1], args[name]):
            return name
        i += 1
    return None


def arguments(action):
    """The (name, kind) pairs `action` takes, or None for an unknown action."""
    text = ARGUMENTS.get(action)
    return None if text is None else fields(text)


def check_args(action, args):
    """TokenError unless `action` is known and `args` has exactly its keys, each of its kind."""
    schema = arguments(action)
    if schema is None:
        raise TokenError(errors.NOT_SUPPORTED, "unknown action %r" % action)
    if not isinstance(args, dict):
        raise TokenError(errors.BAD_ARGUMENT, "%s: args must be an object" % action)
    name = _unknown_name(schema, args)
    if name is not None:
        raise TokenError(errors.BAD_ARGUMENT, "%s takes no argument %r" % (action, name))
    name = _bad_value(schema, args)
    if name is not None:
        raise TokenError(errors.BAD_ARGUMENT, "%s: %r missing or out of range" % (action, name))


def decode_token(token):
    """Decode the text and JSON of a (verified) Token in place and check its arguments."""
    token.key_id = _utf8(token.key_id_raw, "key id")
    token.serial = _utf8(token.serial_raw, "serial")
    token.action = _utf8(token.action_raw, "action")
    token.args = _json_object(token.args_raw)
    check_args(token.action, token.args)
    return token
