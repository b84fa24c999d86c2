"""A test double of firmware/authority.py's Authority (the contract's interface), both runtimes.

Tokens here are readable JSON instead of Ed25519-signed bytes, but the double checks what
the real Authority checks, in the same order, with the same NACK codes: parse, signature
("sig": "good"), key and its scope, serial, validity window by `now`, replay, and the
session binding (a token with a nonce must match the session's; service and set_time
tokens must carry one). Keypad codes are a keyed SHA-256 of the request and action.
`mint(...)` makes tokens and `answer(...)` the provider's code, for the tests.
"""

import json
from binascii import hexlify, unhexlify
from hashlib import sha256

from protocol import errors
from protocol.endpoint import Refused
from protocol.tokens import ACTION_SCOPES, SESSION_BOUND

SERIAL = "LCI-0001"
ROOT_KEY = b"R" * 32
SECRET = b"S" * 32

# key id: the scopes it may sign ("root" signs anything)
KEYS = {
    "root": None,
    "tech": ("calibrate", "set_time", "unlock"),
    "calibrator": ("calibrate",),
    "billing": ("billing",),
    "office": ("work_order",),
}
# the real token format's tables, so the double cannot drift from the device's rules
SCOPES = ACTION_SCOPES


class Grant:
    def __init__(self, action, args, key_id, token_id, expires, session_bound=False):
        self.scopes = KEYS.get(key_id)  # None for the root, as the real Grant
        self.scope = ACTION_SCOPES.get(action)
        self.action = action
        self.args = args
        self.key_id = key_id
        self.token_id = token_id
        self.expires = expires
        self.session_bound = session_bound


_minted = [0]


def mint(action, args=None, serial=SERIAL, key="root", issued=0, expires=0x7FFFFFFF, nonce=None, sig="good", token_id=None):
    """Token bytes for the double. nonce: the session nonce bytes to bind to (or None)."""
    _minted[0] += 1
    if token_id is None:
        token_id = sha256(("token %d" % _minted[0]).encode()).digest()[:16]
    body = {
        "action": action,
        "args": args or {},
        "serial": serial,
        "key": key,
        "nbf": issued,
        "exp": expires,
        "id": hexlify(token_id).decode(),
        "nonce": hexlify(nonce).decode() if nonce else None,
        "sig": sig,
    }
    return json.dumps(body).encode()


def _digits(data, n):
    value = int(hexlify(sha256(data).digest()[:8]).decode(), 16)
    text = str(value % (10**n))
    return "0" * (n - len(text)) + text


def answer(request, action, secret=SECRET, seq=None):
    """The provider's code for a request (what host_tools/codes.py answers for real); a
    clear code is bound to `seq`, the directive number of its lockout."""
    bound = b"" if action != "clear" else b"|" + str(seq).encode()
    return _digits(secret + b"|" + request.encode() + b"|" + action.encode() + bound, 8)


class AuthorityDouble:
    def __init__(self, serial, root_public_key, device_secret, config=None):
        self.serial = serial
        self.root = root_public_key
        self.secret = device_secret
        self.checked = 0

    def check_token(self, token, now, session_nonce, used_ids):
        self.checked += 1
        try:
            body = json.loads(bytes(token))
            action = body["action"]
            args = body["args"]
            key = body["key"]
            token_id = unhexlify(body["id"])
        except (ValueError, KeyError, TypeError):
            raise Refused(errors.MALFORMED_TOKEN, "not a token")  # noqa: B904 (MicroPython)
        if body.get("sig") != "good":
            raise Refused(errors.BAD_SIGNATURE)
        if key not in KEYS:
            raise Refused(errors.UNKNOWN_KEY, key)
        scope = SCOPES.get(action)
        if scope is None:
            raise Refused(errors.MALFORMED_TOKEN, "unknown action %s" % action)
        if KEYS[key] is not None and scope not in KEYS[key]:
            raise Refused(errors.OUT_OF_SCOPE, "%s may not sign %s" % (key, action))
        if body.get("serial") != self.serial:
            raise Refused(errors.WRONG_DEVICE)
        if now >= body["exp"]:  # as firmware/authority.py: valid while now < expires
            raise Refused(errors.EXPIRED)
        if now < body["nbf"]:
            raise Refused(errors.NOT_YET_VALID)
        if token_id in used_ids:
            raise Refused(errors.ALREADY_APPLIED)
        nonce = body.get("nonce")
        if nonce is not None and unhexlify(nonce) != session_nonce:
            raise Refused(errors.SESSION_MISMATCH)
        if nonce is None and action in SESSION_BOUND:
            raise Refused(errors.SESSION_MISMATCH, "%s must be bound to the session" % action)
        return Grant(action, args, key, token_id, body["exp"], nonce is not None)

    def request_code(self, action, counter, nonce):
        data = self.secret + action.encode() + str(counter).encode() + bytes(nonce)
        digits = _digits(data, 10)
        return digits[:5] + " " + digits[5:]

    def check_code(self, request, code, action, seq=None):
        if action == "clear" and seq is None:
            return False
        return code == answer(request, action, self.secret, seq)
