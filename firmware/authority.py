"""The device's authority: what a signed token or a keypad code authorizes, and nothing else.

    Authority(serial, root_public_key, device_secret, config=None, verifier=None)
    .check_token(token, now, session_nonce, used_ids) -> Grant, or raises Refused(code, detail)
    .request_code(action, counter, nonce) -> str     the request shown on the handset
    .check_code(request, code, action, seq=None) -> bool   the provider's answer? (constant
                                                     time; seq: a clear code's lockout number)

check_token applies the token checks of protocol/grants.py, in their order, with the
device's own Ed25519 verifier (firmware/ed25519.py); each failure is a Refused with its
NACK code. `verifier` replaces that verifier with another module of the same two functions
(verify, valid_public_key) and the same rules: a host runtime of the core passes
host_tools/ed25519_host.py (OpenSSL), a board never does.

It is pure: it records nothing. The core applies the Grant, then adds grant.token_id to
its persisted used ids, and owns every rule about time going back (`now` is whatever the
core passes). The one thing kept between calls is a small cache of certificates whose
root signature already verified (by SHA-256 of their bytes), which changes no result.

Keypad codes: see protocol/keycodes.py (request format, HMAC-SHA256, RFC 4226 truncation,
constant-time compare) and firmware/keypad.py (the back-off schedule the core applies).

Heap: the token checks and codec (protocol/grants.py, protocol/tokens.py), the Ed25519
verifier and SHA-512 are imported for a check and unloaded after it under MicroPython
(about 14 KB of a board's heap that only a token or a new root key needs).
"""

try:
    from micropython import const
except ImportError:  # CPython: the value itself
    const = int  # type: ignore[misc, assignment]

from hashlib import sha256

from firmware.unload import drop
from protocol.messages import CODE_DIGITS

DEFAULTS = {"code_digits": CODE_DIGITS}
_CERT_CACHE_SIZE = const(4)


def _checked_serial(serial):
    if not isinstance(serial, str) or not serial:
        raise ValueError("serial must be a non-empty string")
    return serial


def _verifier(verifier):
    """`verifier`, or else firmware.ed25519, imported for a check and dropped after it
    (_drop_token_code)."""
    if verifier is not None:
        return verifier
    from firmware import ed25519

    return ed25519


def _grants():
    """protocol.grants, imported for a check and dropped after it (_drop_token_code)."""
    from protocol import grants

    return grants


def _drop_token_code():
    """Unload the token codec, the verifier and its SHA-512 (firmware/unload.py): a board's
    heap holds them only while a key or a token is checked."""
    drop("firmware.ed25519", "firmware.sha512", "protocol.grants", "protocol.tokens", "protocol.compare")


def _drop_keycodes():
    """Unload the keypad codes' derivation (protocol/keycodes.py): a board's heap holds it
    only while a request is made or a code is checked."""
    drop("protocol.keycodes", "protocol.compare")


def _checked_root(key, verifier):
    key = bytes(key)
    valid = _verifier(verifier).valid_public_key(key)
    _drop_token_code()
    if not valid:
        raise ValueError("root public key is not a valid Ed25519 key")
    return key


def _checked_secret(secret):
    secret = bytes(secret)
    if len(secret) != 32:
        raise ValueError("device secret must be 32 bytes")
    return secret


def _settings(config):
    out = dict(DEFAULTS)
    for key in config or {}:
        if key not in DEFAULTS:
            raise ValueError("unknown authority setting %r" % key)
        out[key] = config[key]
    if out["code_digits"] not in (8, 9):
        raise ValueError("code_digits is 8 or 9")
    return out


class Authority:
    def __init__(self, serial, root_public_key, device_secret, config=None, verifier=None):
        self.serial = _checked_serial(serial)
        self.verifier = verifier
        self.root_public_key = _checked_root(root_public_key, verifier)
        _drop_token_code()
        self.config = _settings(config)
        self._secret = _checked_secret(device_secret)
        self._certs = []  # SHA-256 of certificates whose root signature verified

    # ---- signed tokens -------------------------------------------------------------------
    def check_token(self, token, now, session_nonce, used_ids):
        """A protocol.grants.Grant for a valid token, else Refused (protocol/grants.py's order)."""
        try:
            return _grants().check_token(token, self.root_public_key, self.serial, now, session_nonce,
                                         used_ids, _verifier(self.verifier).verify, self._certificate_verifies)
        finally:
            _drop_token_code()

    def _certificate_verifies(self, cert):
        digest = sha256(cert.raw).digest()
        if digest in self._certs:
            return True
        ed25519 = _verifier(self.verifier)
        if not ed25519.valid_public_key(cert.public_key):
            return False
        if not ed25519.verify(self.root_public_key, cert.signed, cert.signature):
            return False
        self._certs.append(digest)
        if len(self._certs) > _CERT_CACHE_SIZE:
            self._certs.pop(0)
        return True

    # ---- keypad codes --------------------------------------------------------------------
    def request_code(self, action, counter, nonce):
        """The request code for `action` shown on the handset: 12 digits in groups of four.

        counter: the core's request counter (int); nonce: random bytes (or an int)."""
        from protocol import keycodes

        try:
            return keycodes.request_code(self.serial, action, counter, nonce)
        finally:
            _drop_keycodes()

    def check_code(self, request, code, action, seq=None):
        """True if `code` is the provider's answer to `request` for `action` (constant time);
        a `clear` code is bound to `seq`, the directive number of the lockout it answers."""
        from protocol import keycodes

        try:
            key = keycodes.CodeKey(self._secret, self.serial, self.config["code_digits"])
            return key.check(request, code, action, seq)
        finally:
            _drop_keycodes()
