"""Device directives: the outbox of recall / lockout / clear tokens and clear keypad codes.

The engine decides a directive inside the same transaction that changes the account, so the
outbox never disagrees with the ledger. Signing is delegated:

- a *token signer* (`TokenSigner`) mints a signed token for (serial, action, args) in core seconds;
  the CLI builds one from key files through host_tools.keys / host_tools.tokens. With no signer
  the directive waits in the outbox as `pending` and `issue_pending` mints it later.
- a *code answerer* (`CodeAnswerer`) turns the request code the client reads from the handset
  into the provider's answer (host_tools.codes.answer). A lockout ended by full payment leaves a
  keypad `clear` directive `awaiting_request` ("Obtain a code from the Service Provider to clear
  the Lockout Mode after full payment"); the operator answers the client's request code once.
  (A keypad `unlock` is the device's temporary lockout override, a service decision, not a
  billing one: billing answers only `clear` requests.)

Directive order (SPEC 9.4, enforced by the device): every recall and lockout carries its own
outbox row id as `seq` (ids only grow, so each device sees increasing numbers); a clear carries
the `seq` of the last recall or lockout decided for that serial, the one it answers, and so does
its keypad clear code (the device computes the code for the lockout in force). So a clear
never ends a later lockout, and whichever of the clear token and the clear code is used first,
the other is refused by the device. A newer recall or lockout also retires, here, every keypad
clear still awaiting a request for that serial: `answer_code` refuses it and marks it
`superseded`, so the operator is never given a code for a lockout that is over.

Nothing here invents a signature: without keys, nothing is signed.
"""

from __future__ import annotations

import binascii
import json
from typing import Protocol

from protocol import coretime

from .errors import InputError, RuleError
from .store import Store

TOKEN = "token"
CODE = "code"
PENDING = "pending"
ISSUED = "issued"
AWAITING_REQUEST = "awaiting_request"
SUPERSEDED = "superseded"
ORDERED = ("recall", "lockout")  # the directives that take a new number; a clear answers one


# a token dated from a handset's clock is valid from this long before it: the handset's clock
# may read a little behind the time it was read at
DEVICE_CLOCK_SLACK_S = 60


def core_seconds(unix_seconds: int) -> int:
    """Unix seconds -> the device core's seconds (epoch 2020-01-01T00:00:00Z)."""
    return coretime.from_unix(unix_seconds)


class TokenSigner(Protocol):
    key_id: str

    def mint(self, serial: str, action: str, args: dict, *, now: int, ttl: int) -> bytes:
        """A signed token; `now` in core seconds, `ttl` in seconds."""


class CodeAnswerer(Protocol):
    def answer(self, serial: str, request: str, action: str, lockout: int | None = None) -> str:
        """The provider's keypad answer to the handset's request code for `action` (a clear:
        for the lockout of directive number `lockout`)."""


def args_text(args: dict) -> str:
    return json.dumps(args, sort_keys=True, separators=(",", ":"))


def _stored_last_ordered(conn, serial: str) -> int:
    return Store(conn).last_directives([serial], ORDERED).get(serial, 0)


def _last_ordered(uow, serial: str) -> int:
    """The seq of the last recall or lockout decided for `serial` (this transaction's first)."""
    found = uow.last_ordered.get(serial)
    return found if found is not None else _stored_last_ordered(uow.conn, serial)


def decide(uow, account, at: int, action: str, args: dict, delivery: str, signer, ttl: int):
    """Append one outbox row (minting it at once when a signer is at hand); returns the row id.
    A recall or lockout is numbered with its row id, a clear with the one it answers."""
    directive_id = uow.allocate("directive")
    if action in ORDERED:
        args = {**args, "seq": directive_id}
        uow.last_ordered[account.serial] = directive_id
    elif action == "clear":
        args = {**args, "seq": _last_ordered(uow, account.serial)}
    status = AWAITING_REQUEST if delivery == CODE else PENDING
    issued_at = key_id = not_before = expires = token = None
    note = None
    if delivery == TOKEN and signer is not None:
        try:
            minted = signer.mint(account.serial, action, args, now=core_seconds(at), ttl=ttl)
        except ValueError as exc:  # e.g. the delegation expired: keep it pending, say why
            note = f"not signed: {exc}"[:200]
        else:
            not_before = core_seconds(at)
            expires = not_before + ttl
            token = binascii.hexlify(minted).decode()
            status, issued_at, key_id = ISSUED, at, signer.key_id
    uow.directives += (directive_id, account.id, account.serial, at, action, args_text(args),
                       delivery, status, issued_at, key_id, not_before, expires, token, None, None,
                       note)
    return directive_id


def issue_pending(conn, signer: TokenSigner, now: int, ttl: int, device_time: int | None = None) -> int:
    """Mint every pending token directive (oldest first) at `now`, dated from `device_time`
    (the handset's clock, Unix seconds) when given, else from `now`; returns how many.
    The pending rows are read under the writer lock: two signers (two link processes on one
    database) never both sign the same directive."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        now = _clock_at_least(conn, now)
        rows = conn.execute("SELECT d.id, d.serial, d.action, d.args FROM directive d"
                            " WHERE d.status = ? AND d.delivery = ? ORDER BY d.id",
                            (PENDING, TOKEN)).fetchall()
        for directive_id, serial, action, args in rows:
            not_before = (core_seconds(now) if device_time is None
                          else core_seconds(device_time) - DEVICE_CLOCK_SLACK_S)
            token = signer.mint(serial, action, json.loads(args), now=not_before, ttl=ttl)
            conn.execute("UPDATE directive SET status = ?, issued_at = ?, key_id = ?,"
                         " not_before_core = ?, expires_core = ?, token = ?, note = NULL"
                         " WHERE id = ?",
                         (ISSUED, now, signer.key_id, not_before, not_before + ttl,
                          binascii.hexlify(token).decode(), directive_id))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(rows)


def export_token(conn, directive_id: int, *, signer: TokenSigner | None = None,
                 device_time: int | None = None, ttl: int = 0, now: int = 0) -> dict:
    """A token directive's signed token, for a file `lci-tool token apply` presents.

    The outbox signs tokens dated on the billing clock, which a handset on real time refuses
    (expired or not yet valid). With `device_time` (Unix seconds: the handset's clock, e.g.
    from `lci-tool status`) and a signer, the token is signed again dated from that time and
    replaces the stored one (the row's window follows; the directive stays the same decision).
    Returns {id, serial, action, args, token (bytes), not_before, expires} (core seconds)."""
    row = conn.execute("SELECT id, serial, action, args, delivery, status, token, not_before_core,"
                       " expires_core FROM directive WHERE id = ?", (directive_id,)).fetchone()
    if row is None:
        raise InputError("directive", str(directive_id), "no such directive")
    did, serial, action, args, delivery, status, token, not_before, expires = row
    if delivery != TOKEN:
        raise RuleError(f"directive {did} is delivered as a keypad code, not a token "
                        "(`lci-billing directives answer`)")
    if device_time is not None:
        if signer is None:
            raise InputError("--signing-key", "", "needed to sign the token for the handset's time")
        not_before = core_seconds(device_time) - DEVICE_CLOCK_SLACK_S
        expires = not_before + ttl
        minted = signer.mint(serial, action, json.loads(args), now=not_before, ttl=ttl)
        token = binascii.hexlify(minted).decode()
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = _clock_at_least(conn, now)
            conn.execute("UPDATE directive SET status = ?, issued_at = COALESCE(issued_at, ?),"
                         " key_id = ?, not_before_core = ?, expires_core = ?, token = ?, note = NULL"
                         " WHERE id = ?", (ISSUED, now, signer.key_id, not_before, expires, token, did))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    elif token is None:
        raise RuleError(f"directive {did} is not signed yet ({status}): run `lci-billing "
                        "directives issue`, or give --device-time with --signing-key")
    return {"id": did, "serial": serial, "action": action, "args": json.loads(args),
            "token": binascii.unhexlify(token), "not_before": not_before, "expires": expires}


def answer_code(conn, account_id: int, request: str, answerer: CodeAnswerer, now: int) -> str:
    """Answer the oldest keypad directive awaiting a request code for this account. The directive
    is read, checked and marked under the writer lock: a recall or lockout decided meanwhile (a
    run going on) is seen, and the time recorded is never before the billing clock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _answer(conn, account_id, request, answerer, _clock_at_least(conn, now))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if isinstance(found, RuleError):
        raise found  # (the directive was retired: that much is kept)
    return found


def _answer(conn, account_id: int, request: str, answerer: CodeAnswerer, now: int):
    """The code (the directive marked issued), or a RuleError to raise once the directive is
    retired as superseded; raises RuleError when nothing is to be changed."""
    row = conn.execute("SELECT id, serial, action, args FROM directive WHERE account_id = ? AND status = ?"
                       " ORDER BY id LIMIT 1", (account_id, AWAITING_REQUEST)).fetchone()
    if row is None:
        raise RuleError("no keypad code is authorized for this account (a clear code is, once a "
                        "lockout is paid in full)")
    directive_id, serial, action, args = row
    lockout = json.loads(args).get("seq") if action == "clear" else None
    if lockout is not None and lockout < _stored_last_ordered(conn, serial):
        conn.execute("UPDATE directive SET status = ?, note = ? WHERE id = ?",
                     (SUPERSEDED, "a newer recall or lockout was decided", directive_id))
        return RuleError("the lockout this clear code was for is over: a newer recall or lockout "
                         "was decided; no code is given for it")
    asked = getattr(answerer, "requested_action", lambda r: action)(request)
    if asked != action:
        raise RuleError(f"the handset asked for {'an' if asked[:1] in 'aeiou' else 'a'} {asked} code; billing authorizes {action}: "
                        f"ask the client to request a {action} code")
    try:
        code = answerer.answer(serial, request, action, lockout)
    except ValueError as exc:
        raise RuleError(f"request code {request}: {exc}") from None
    conn.execute("UPDATE directive SET status = ?, issued_at = ?, request = ?, code = ?"
                 " WHERE id = ?", (ISSUED, now, request, code, directive_id))
    return code


def _clock_at_least(conn, now: int) -> int:
    """`now`, or the billing clock when a run moved it further while the caller waited."""
    return max(now, int(Store(conn).meta("now", "0")))
