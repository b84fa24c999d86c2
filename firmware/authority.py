"""The device's authority: what a signed token or a keypad code authorizes, and nothing else.

    Authority(serial, root_public_key, device_secret, config=None)
    .check_token(token, now, session_nonce, used_ids) -> Grant, or raises Refused(code, detail)
    .request_code(action, counter, nonce) -> str     the request shown on the handset
    .check_code(request, code, action, seq=None) -> bool   the provider's answer? (constant
                                                     time; seq: a clear code's lockout number)

check_token verifies, in this order, each failure a Refused with its NACK code:
 1. the bytes parse as a token (MALFORMED_TOKEN);
 2. it names this provider's root (root id = SHA-256(root key)[:8]) (UNKNOWN_KEY);
 3. the signer: the root itself (key id "root", no certificate), or a delegated key whose
    certificate names the same key id and carries a valid root signature over a valid
    public key (BAD_DELEGATION; a delegated key id without a certificate: UNKNOWN_KEY);
 4. the token's Ed25519 signature by that key (BAD_SIGNATURE);
 5. its text and arguments decode (MALFORMED_TOKEN, NOT_SUPPORTED for an unknown action,
    BAD_ARGUMENT for arguments that do not fit the action);
 6. the serial is this device's (WRONG_DEVICE);
 7. the token id is not in `used_ids`: a token already applied is answered ALREADY_APPLIED
    whatever its window or session (its first answer was lost; nothing changes);
 8. a delegated key holds the action's scope (OUT_OF_SCOPE);
 9. the delegation has not expired by `now` (DELEGATION_EXPIRED);
10. not_before <= now (NOT_YET_VALID) and now < expires (EXPIRED);
11. a token carrying a session nonce matches `session_nonce`, and service / set_time
    tokens must carry one (SESSION_MISMATCH).

It is pure: it records nothing. The core applies the Grant, then adds grant.token_id to
its persisted used ids, and owns every rule about time going back (`now` is whatever the
core passes). The one thing kept between calls is a small cache of certificates whose
root signature already verified (by SHA-256 of their bytes), which changes no result.

Keypad codes: see firmware/keycodes.py (request format, HMAC-SHA256, RFC 4226 truncation,
constant-time compare, the back-off schedule the core applies).

Heap: the token codec (protocol/tokens.py), the Ed25519 verifier and SHA-512 are imported
for a check and unloaded after it under MicroPython (about 33 KB of a board's heap that
only a token or a new root key needs).
"""

import sys
from hashlib import sha256

from protocol import errors, keycodes
from protocol.endpoint import Refused

DEFAULTS = {"code_digits": keycodes.CODE_DIGITS}
_CERT_CACHE_SIZE = 4


class Grant:
    """What a valid token authorizes (the contract's fields, plus where it came from)."""

    def __init__(self, token, scopes):
        self.action = token.action
        self.args = token.args
        self.key_id = token.key_id
        self.token_id = token.token_id
        self.expires = token.expires
        self.issued = token.issued
        self.not_before = token.not_before
        self.serial = token.serial
        self.session_bound = token.session_nonce is not None
        self.scopes = scopes  # None for the root, else the delegated key's scopes

    def __repr__(self):
        return "Grant(%s %r by %s)" % (self.action, self.args, self.key_id)


def _check_window(token, now):
    if now < token.not_before:
        raise Refused(errors.NOT_YET_VALID, "valid from %d, now %d" % (token.not_before, now))
    if now >= token.expires:
        raise Refused(errors.EXPIRED, "expired at %d, now %d" % (token.expires, now))


def _check_session(token, session_nonce):
    nonce = token.session_nonce
    if nonce is None:
        if token.action in _tokens().SESSION_BOUND:
            raise Refused(errors.SESSION_MISMATCH, "%s must be bound to this session" % token.action)
        return
    if session_nonce is None or not keycodes.equal(nonce, bytes(session_nonce)):
        raise Refused(errors.SESSION_MISMATCH, "bound to another USB session")


def _check_scope(token, cert, now):
    if cert is None:
        return
    if _tokens().ACTION_SCOPES[token.action] not in cert.scopes:
        raise Refused(errors.OUT_OF_SCOPE, "%s may not sign %s" % (token.key_id, token.action))
    if now >= cert.expires:
        raise Refused(errors.DELEGATION_EXPIRED, "%s expired at %d" % (token.key_id, cert.expires))


def _checked_serial(serial):
    if not isinstance(serial, str) or not serial:
        raise ValueError("serial must be a non-empty string")
    return serial


def _verifier():
    """firmware.ed25519, imported for a check and dropped after it (_drop_token_code)."""
    from firmware import ed25519

    return ed25519


def _tokens():
    """protocol.tokens, imported for a check and dropped after it (_drop_token_code)."""
    from protocol import tokens

    return tokens


_TOKEN_CODE = (("firmware", "ed25519"), ("firmware", "sha512"), ("protocol", "tokens"))


def _drop_token_code():
    """Under MicroPython, unload the token codec, the verifier and its SHA-512 (~33 KB of a
    board's heap, needed only while a key or a token is checked); CPython keeps them."""
    if sys.implementation.name != "micropython":
        return
    for package, name in _TOKEN_CODE:
        sys.modules.pop(package + "." + name, None)
        parent = sys.modules.get(package)
        if parent is not None and hasattr(parent, name):
            delattr(parent, name)


def _checked_root(key):
    key = bytes(key)
    valid = _verifier().valid_public_key(key)
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
    def __init__(self, serial, root_public_key, device_secret, config=None):
        self.serial = _checked_serial(serial)
        self.root_public_key = _checked_root(root_public_key)
        self.root_id = _tokens().root_id(self.root_public_key)
        _drop_token_code()
        self.config = _settings(config)
        self._codes = keycodes.CodeKey(_checked_secret(device_secret), serial, self.config["code_digits"])
        self._certs = []  # SHA-256 of certificates whose root signature verified

    # ---- signed tokens -------------------------------------------------------------------
    def check_token(self, token, now, session_nonce, used_ids):
        """A Grant for a valid token, else Refused (see the module docstring for the order)."""
        try:
            return self._check_token(token, now, session_nonce, used_ids)
        finally:
            _drop_token_code()

    def _check_token(self, token, now, session_nonce, used_ids):
        tokens = _tokens()
        token = tokens.parse_token(token)  # a TokenError is a Refused
        if token.root_id != self.root_id:
            raise Refused(errors.UNKNOWN_KEY, "signed under another provider root")
        if not _verifier().verify(self._signer(token), token.signed, token.signature):
            raise Refused(errors.BAD_SIGNATURE, "token signature does not verify")
        token = tokens.decode_token(token)
        if token.serial != self.serial:
            raise Refused(errors.WRONG_DEVICE, "token for %s" % token.serial)
        if used_ids is not None and token.token_id in used_ids:
            # a genuine token this device applied: presented again (its answer was lost)
            raise Refused(errors.ALREADY_APPLIED, "token already applied: nothing changed")
        _check_scope(token, token.certificate, now)
        _check_window(token, now)
        _check_session(token, session_nonce)
        cert = token.certificate
        return Grant(token, None if cert is None else cert.scopes)

    def _signer(self, token):
        """The public key that must have signed `token` (root or a verified delegated key)."""
        cert = token.certificate
        if token.key_id_raw == b"root":
            if cert is not None:
                raise Refused(errors.BAD_DELEGATION, "the root signs without a certificate")
            return self.root_public_key
        if cert is None:
            raise Refused(errors.UNKNOWN_KEY, "delegated key without a certificate")
        if cert.key_id != token.key_id_raw:
            raise Refused(errors.BAD_DELEGATION, "certificate is for another key")
        if not self._certificate_verifies(cert):
            raise Refused(errors.BAD_DELEGATION, "certificate does not verify under the root")
        return cert.public_key

    def _certificate_verifies(self, cert):
        digest = sha256(cert.raw).digest()
        if digest in self._certs:
            return True
        ed25519 = _verifier()
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
        return keycodes.request_code(self.serial, action, counter, nonce)

    def check_code(self, request, code, action, seq=None):
        """True if `code` is the provider's answer to `request` for `action` (constant time);
        a `clear` code is bound to `seq`, the directive number of the lockout it answers."""
        return self._codes.check(request, code, action, seq)
