"""What a signed token authorizes: the order of the token checks, and the Grant they give.

    check_token(token, root_public_key, serial, now, session_nonce, used_ids,
                verify, certificate_ok) -> Grant, or raises Refused(code, detail)

verify(public_key, message, signature) -> bool is the Ed25519 check of the side that runs
this (the device's own verifier, or the host's `cryptography`); certificate_ok(cert) ->
bool says whether a delegation certificate carries a valid root signature over a valid
public key (the device caches the answer). The checks, in this order, each failure a
Refused with its NACK code:

 1. the bytes parse as a token (MALFORMED_TOKEN);
 2. it names this provider's root (root id = SHA-256(root key)[:8]) (UNKNOWN_KEY);
 3. the signer: the root itself (key id "root", no certificate), or a delegated key whose
    certificate names the same key id and passes certificate_ok (BAD_DELEGATION; a
    delegated key id without a certificate: UNKNOWN_KEY);
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

It is pure: it records nothing.
"""

from protocol import errors, tokens
from protocol.compare import equal
from protocol.endpoint import Refused


class Grant:
    """What a valid token authorizes (the contract's fields, plus where it came from), set by
    _grant. A class without methods: a Grant refers to no function of this module, so it
    keeps none of the token code alive while the device applies it (a board drops that code
    after the check: firmware/authority.py)."""

    action: str
    args: dict
    key_id: str
    token_id: bytes
    expires: int
    issued: int
    not_before: int
    serial: str
    session_bound: bool
    scopes: object  # None for the root, else the delegated key's scopes (a tuple)
    scope: object  # the scope the action belongs to (a str; None for no scope)


def _grant(token, scopes):
    grant = Grant()
    grant.action = token.action
    grant.args = token.args
    grant.key_id = token.key_id
    grant.token_id = token.token_id
    grant.expires = token.expires
    grant.issued = token.issued
    grant.not_before = token.not_before
    grant.serial = token.serial
    grant.session_bound = token.session_nonce is not None
    grant.scopes = scopes  # None for the root, else the delegated key's scopes
    grant.scope = tokens.ACTION_SCOPES.get(token.action)  # the scope the action belongs to
    return grant


def _check_window(token, now):
    if now < token.not_before:
        raise Refused(errors.NOT_YET_VALID, "valid from %d, now %d" % (token.not_before, now))
    if now >= token.expires:
        raise Refused(errors.EXPIRED, "expired at %d, now %d" % (token.expires, now))


def _check_session(token, session_nonce):
    nonce = token.session_nonce
    if nonce is None:
        if token.action in tokens.SESSION_BOUND:
            raise Refused(errors.SESSION_MISMATCH, "%s must be bound to this session" % token.action)
        return
    if session_nonce is None or not equal(nonce, bytes(session_nonce)):
        raise Refused(errors.SESSION_MISMATCH, "bound to another USB session")


def _check_scope(token, cert, now):
    if cert is None:
        return
    if tokens.ACTION_SCOPES[token.action] not in cert.scopes:
        raise Refused(errors.OUT_OF_SCOPE, "%s may not sign %s" % (token.key_id, token.action))
    if now >= cert.expires:
        raise Refused(errors.DELEGATION_EXPIRED, "%s expired at %d" % (token.key_id, cert.expires))


def _signer(token, root_public_key, certificate_ok):
    """The public key that must have signed `token` (root or a verified delegated key)."""
    cert = token.certificate
    if token.key_id_raw == b"root":
        if cert is not None:
            raise Refused(errors.BAD_DELEGATION, "the root signs without a certificate")
        return root_public_key
    if cert is None:
        raise Refused(errors.UNKNOWN_KEY, "delegated key without a certificate")
    if cert.key_id != token.key_id_raw:
        raise Refused(errors.BAD_DELEGATION, "certificate is for another key")
    if not certificate_ok(cert):
        raise Refused(errors.BAD_DELEGATION, "certificate does not verify under the root")
    return cert.public_key


def check_token(token, root_public_key, serial, now, session_nonce, used_ids, verify, certificate_ok):
    """A Grant for a valid token, else Refused (the order is the module docstring's)."""
    token = tokens.parse_token(token)  # a TokenError is a Refused
    if token.root_id != tokens.root_id(root_public_key):
        raise Refused(errors.UNKNOWN_KEY, "signed under another provider root")
    if not verify(_signer(token, root_public_key, certificate_ok), token.signed, token.signature):
        raise Refused(errors.BAD_SIGNATURE, "token signature does not verify")
    token = tokens.decode_token(token)
    if token.serial != serial:
        raise Refused(errors.WRONG_DEVICE, "token for %s" % token.serial)
    if used_ids is not None and token.token_id in used_ids:
        # a genuine token this device applied: presented again (its answer was lost)
        raise Refused(errors.ALREADY_APPLIED, "token already applied: nothing changed")
    _check_scope(token, token.certificate, now)
    _check_window(token, now)
    _check_session(token, session_nonce)
    cert = token.certificate
    return _grant(token, None if cert is None else cert.scopes)
