"""A stand-in Authority for simulator tests that must not depend on real signatures.

Tokens are JSON {"action", "args", "id"[, "nonce"]} in plain bytes; a keypad code is the
request's digits reversed. Only for exercising the simulator's plumbing: the real
authority (firmware/authority.py) is tested by its own suite. MicroPython-compatible.
"""

import json

from protocol import errors
from protocol.endpoint import Refused


class Grant:
    def __init__(self, action, args, token_id):
        self.action = action
        self.args = args
        self.key_id = "fake"
        self.token_id = token_id
        self.expires = 0x7FFFFFFF


class FakeAuthority:
    def __init__(self, serial, root_public_key, device_secret, config=None):
        self.serial = serial

    def check_token(self, token, now, session_nonce, used_ids):
        body = None
        try:
            body = json.loads(bytes(token).decode())
            action = body["action"]
            args = body["args"]
            token_id = body["id"].encode()
        except (ValueError, KeyError, TypeError, AttributeError):
            body = None
        if body is None:
            raise Refused(errors.MALFORMED_TOKEN, "fake token")
        if token_id in used_ids:
            raise Refused(errors.ALREADY_APPLIED)
        return Grant(action, args, token_id)

    def request_code(self, action, counter, nonce):
        return str(counter) + "-" + str(nonce[0])

    def check_code(self, request, code, action, seq=None):
        digits = "".join(ch for ch in request if "0" <= ch <= "9")
        return code == digits[::-1]


def make(serial, root_key, secret, config=None):
    return FakeAuthority(serial, root_key, secret, config)


def token(action, args, token_id):
    return json.dumps({"action": action, "args": args, "id": token_id}).encode()
