"""Minting signed tokens on the provider's side (lci-tool, the billing back office).

    mint(signer, serial, action, args, *, now, ttl, not_before=None, session_nonce=None)
        -> token bytes (protocol/tokens.py format, at most 510 bytes)
    describe(token) -> dict        every field, decoded, for people and logs
    DirectiveOrder().args(serial, action, cause, days=None) -> dict
        the arguments of a billing directive with its number (`seq`, SPEC 9.4)
    check(token, root_public_key, serial, now, session_nonce=None, used_ids=())
        -> protocol.grants.Grant, or raises protocol.endpoint.Refused: what the device
           would answer (the device's checks, protocol/grants.py)

`signer` is a host_tools.keys.RootKey or DelegatedKey. mint refuses, with one line saying
why (MintError), what the device would refuse anyway: an action outside the signer's
scopes, a delegation already expired at `now`, arguments that do not fit the action, a
session-bound action (service, set_time) without the HELLO nonce, a token over 510 bytes.
"""

from __future__ import annotations

import secrets
import time

from host_tools import ed25519_host
from protocol import grants, signing, tokens


class MintError(ValueError):
    """A token that cannot (or must not) be minted; the message is one line for people."""


def mint(signer, serial: str, action: str, args: dict, *, now: int, ttl: int,
         not_before: int | None = None, session_nonce: bytes | None = None,
         token_id: bytes | None = None) -> bytes:
    """A signed token authorizing `action` with `args` on device `serial`.

    now, not_before: core-epoch seconds (not_before defaults to now); the token expires at
    now + ttl. session_nonce: the 16-byte nonce of the device's HELLO reply, binding the
    token to that USB session (required for service and set_time). token_id: 16 bytes,
    random unless given (the device answers a token id it has applied with ALREADY_APPLIED).
    """
    if action not in tokens.ACTION_SCOPES:
        raise MintError(f"unknown action {action!r} (actions: {', '.join(tokens.ACTION_SCOPES)})")
    if not signer.may_sign(action):
        raise MintError(
            f"key {signer.key_id} (scopes: {', '.join(signer.scopes)}) may not sign {action}"
            f" (needs scope {tokens.ACTION_SCOPES[action]})"
        )
    if signer.expires is not None and now >= signer.expires:
        raise MintError(f"key {signer.key_id}'s delegation expired at {signer.expires}")
    if type(ttl) is not int or ttl <= 0:
        raise MintError("ttl must be a positive number of seconds")
    if action in tokens.SESSION_BOUND and session_nonce is None:
        raise MintError(f"a {action} token must be bound to the USB session (its HELLO nonce)")
    if action in DIRECTIVES and isinstance(args, dict) and "seq" not in args:
        raise MintError(f"a {action} directive needs its number (seq): a recall or lockout a number above "
                        f"every earlier one for the device, a clear the number of the lockout it answers")
    if not_before is None:
        not_before = now
    if token_id is None:
        token_id = secrets.token_bytes(tokens.TOKEN_ID_BYTES)
    try:
        body = signing.token_body(
            signer.root_id, signer.key_id, signer.certificate, serial, action, args,
            now, not_before, now + ttl, token_id, session_nonce,
        )
    except tokens.TokenError as exc:
        raise MintError(exc.detail) from None
    except ValueError as exc:
        raise MintError(str(exc)) from None
    token = body + signer.sign(body)
    if len(token) > tokens.MAX_TOKEN_BYTES:
        raise MintError(f"token is {len(token)} bytes, over {tokens.MAX_TOKEN_BYTES}: shorten the arguments")
    return token


DIRECTIVES = ("recall", "lockout", "clear")


class DirectiveOrder:
    """Numbers one issuer's billing directives per device serial (SPEC 9.4).

    A recall or lockout gets a number above every number this issuer gave that serial, and
    above `floor()` (by default the Unix time in seconds, so a new issuer — a new session
    of the tool — never falls below an earlier one's numbers on the same device); a clear
    gets the number of the last recall or lockout issued for the serial (a fresh number if
    none: the device then clears whatever lockout it has, and raises its own number past it).
    The provider's back office numbers its directives with its outbox row ids instead.
    """

    def __init__(self, floor=None):
        self._last: dict[str, int] = {}
        self._floor = floor or (lambda: int(time.time()))

    def last(self, serial: str) -> int | None:
        """The number of the last recall or lockout issued for `serial` (what a clear answers)."""
        return self._last.get(serial)

    def seq(self, serial: str, action: str, at: int | None = None) -> int:
        """The number for `action`; `at` (seconds on any clock that only moves forward)
        replaces the default floor, e.g. a simulator's virtual time."""
        if action not in DIRECTIVES:
            raise MintError(f"{action!r} is not a billing directive ({', '.join(DIRECTIVES)})")
        last = self._last.get(serial)
        if action == "clear" and last is not None:
            return last
        number = max(self._floor() if at is None else at, (last or 0) + 1)
        if number > tokens.U32_MAX:
            raise MintError("directive numbers are used up (over 2^32 - 1)")
        self._last[serial] = number
        return number

    def args(self, serial: str, action: str, cause: str, days: int | None = None,
             at: int | None = None) -> dict:
        """The arguments of `action` (recall: with `days`) for `serial`, numbered."""
        out = {"cause": cause, "seq": self.seq(serial, action, at)}
        if action == "recall":
            out["days"] = 7 if days is None else days
        return out


def describe(token: bytes) -> dict:
    """Every field of a token, decoded (signatures not checked: see check())."""
    try:
        parsed = tokens.decode_token(tokens.parse_token(token))
    except tokens.TokenError as exc:
        raise MintError(f"not a valid token: {exc.detail}") from None
    cert = parsed.certificate
    return {
        "root_id": parsed.root_id.hex(),
        "key_id": parsed.key_id,
        "serial": parsed.serial,
        "action": parsed.action,
        "args": parsed.args,
        "issued": parsed.issued,
        "not_before": parsed.not_before,
        "expires": parsed.expires,
        "token_id": parsed.token_id.hex(),
        "session_nonce": None if parsed.session_nonce is None else parsed.session_nonce.hex(),
        "certificate": None if cert is None else {
            "key_id": cert.key_id.decode(errors="replace"),
            "public_key": cert.public_key.hex(),
            "scopes": list(cert.scopes),
            "issued": cert.issued,
            "expires": cert.expires,
        },
        "bytes": len(token),
    }


def check(token: bytes, root_public_key: bytes, serial: str, now: int,
          session_nonce: bytes | None = None, used_ids=()):
    """What the device would answer to `token`: a Grant, or Refused(code, detail) (the
    device's checks, protocol/grants.py, with the host's Ed25519)."""
    root_public_key = bytes(root_public_key)

    def certificate_ok(cert) -> bool:
        return (ed25519_host.valid_public_key(cert.public_key)
                and ed25519_host.verify(root_public_key, cert.signed, cert.signature))

    return grants.check_token(token, root_public_key, serial, now, session_nonce, used_ids,
                              ed25519_host.verify, certificate_ok)
