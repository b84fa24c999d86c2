"""Worked examples: early service recall, lockout (both readings), full payment -> clear and unlock,
and the directive outbox.

Oregon, no theft protection; opened and paid Mon 6 Jan 2025 09:00; the card is out of funds from
19 Jan, so the 20 Jan 09:00 charge of 5675 fails and the account falls past due then.
"""

from __future__ import annotations

import json

import pytest

from provider.billing import directives as outbox
from provider.billing.directives import core_seconds
from provider.billing.errors import RuleError

from .harness import Harness, T


def _failing(overrides=None, signer=None):
    h = Harness(overrides=overrides, signer=signer)
    ref = h.open()
    h.card("tok_ok", "2025-01-19", "insufficient_funds")
    return h, ref


def test_recall_after_7_days_then_lockout_7_days_later():
    """Reading "recall_then_lockout" (default). Past due 20 Jan 09:00; unpaid on 27 Jan 09:00 ->
    early service recall, directive recall {"cause": "unpaid_balance", "days": 7}; still unpaid on
    3 Feb 09:00 -> lockout, directive lockout {"cause": "unpaid_balance"}."""
    h, ref = _failing()
    h.to("2025-01-27T08:59")
    assert h.status(ref) == "past_due" and h.directives(ref) == []
    h.to("2025-01-27T09:00")
    assert h.status(ref) == "recall"
    h.to("2025-02-03T09:00")
    assert h.status(ref) == "lockout"
    got = [(d["decided_at"], d["action"], d["args"], d["delivery"]) for d in h.directives(ref)]
    assert got == [
        ("2025-01-27T09:00:00Z", "recall", {"cause": "unpaid_balance", "days": 7, "seq": 1}, "token"),
        ("2025-02-03T09:00:00Z", "lockout", {"cause": "unpaid_balance", "seq": 2}, "token"),
    ]
    assert [d["status"] for d in h.directives(ref)] == ["pending", "pending"]  # no signer here


def test_lockout_reading_locks_out_7_days_past_due_without_recall():
    """Reading "lockout" (Late Payment Policy 3): past due 20 Jan 09:00 -> lockout on 27 Jan 09:00,
    no recall before it."""
    h, ref = _failing({"collections.reading": "lockout"})
    h.to("2025-02-01")
    assert h.status(ref) == "lockout"
    assert [(d["decided_at"], d["action"]) for d in h.directives(ref)] == [
        ("2025-01-27T09:00:00Z", "lockout")]
    assert "recall_for_balance" not in [e["event"] for e in h.history(ref)]


def test_full_payment_from_lockout_clears_and_authorizes_a_clear_code():
    """In lockout on 4 Feb 12:00 the balance is 5675 (20 Jan) + 3000 (late fee, 23 Jan) + 5675
    (3 Feb cycle) = 14350. A payment of $100.00 leaves 4350 owed: still lockout, nothing issued.
    Paying the remaining 4350 -> active; outbox: clear {"cause": "unpaid_balance"} as a token, and
    the same clear as a keypad code awaiting the client's request code ("Obtain a code from the
    Service Provider to clear the Lockout Mode after full payment")."""
    h, ref = _failing()
    h.to("2025-02-04T12:00")
    assert h.status(ref) == "lockout" and h.balance(ref) == 14350
    h.engine.pay(ref, amount=10000, token="tok_visa")
    assert h.status(ref) == "lockout" and h.balance(ref) == 4350
    assert [d["action"] for d in h.directives(ref)] == ["recall", "lockout"]
    h.engine.pay(ref, token="tok_visa")
    assert h.status(ref) == "active" and h.balance(ref) == 0
    new = [(d["action"], d["args"], d["delivery"], d["status"]) for d in h.directives(ref)[2:]]
    # both answer the lockout (directive 2): whichever the device takes, the other is dead there
    assert new == [("clear", {"cause": "unpaid_balance", "seq": 2}, "token", "pending"),
                   ("clear", {"cause": "unpaid_balance", "seq": 2}, "code", "awaiting_request")]
    assert h.account(ref).recall_at is None and h.account(ref).lockout_at is None


def test_full_payment_during_recall_clears_without_an_unlock_code():
    """In recall on 28 Jan the balance is 5675 + 3000 = 8675; paid in full -> active, one clear."""
    h, ref = _failing()
    h.to("2025-01-28")
    assert h.status(ref) == "recall" and h.balance(ref) == 8675
    h.engine.pay(ref, token="tok_visa")
    assert h.status(ref) == "active"
    assert [d["action"] for d in h.directives(ref)] == ["recall", "clear"]
    h.to("2025-02-10")  # the recall timer is gone: no lockout follows
    assert "lockout" not in [d["action"] for d in h.directives(ref)]


def test_payment_within_7_days_avoids_the_recall():
    """Paid in full on 26 Jan (balance 8675) with another card: active again, no directive. The
    card on file still fails, so the 3 Feb charge fails and a new 7-day clock starts then: no
    recall before 10 Feb 09:00."""
    h, ref = _failing()
    h.to("2025-01-26")
    h.engine.pay(ref, token="tok_visa")
    assert h.status(ref) == "active"
    h.to("2025-02-10T08:59")
    assert h.directives(ref) == []
    assert h.status(ref) == "past_due" and h.account(ref).past_due_since == T("2025-02-03T09:00")
    h.to("2025-02-10T09:00")
    assert [d["action"] for d in h.directives(ref)] == ["recall"]


class FakeMinter:
    """A stand-in signer for outbox bookkeeping only (real signing: host_tools.tokens)."""

    key_id = "billing-test"

    def __init__(self):
        self.calls = []

    def mint(self, serial, action, args, *, now, ttl):
        self.calls.append((serial, action, args, now, ttl))
        return json.dumps([serial, action, args, now, ttl]).encode()


def test_outbox_records_what_was_issued_and_when_in_core_seconds():
    """With a signer, the recall is minted when decided: not_before = 27 Jan 2025 09:00 UTC in core
    seconds = 1737968400 - 1577836800 = 160131600; expires 30 days (2592000 s) later."""
    minter = FakeMinter()
    h, ref = _failing(signer=minter)
    h.to("2025-01-27T09:00")
    [d] = h.directives(ref)
    assert T("2025-01-27T09:00") == 1737968400
    assert (d["status"], d["issued_at"], d["key_id"]) == ("issued", "2025-01-27T09:00:00Z",
                                                          "billing-test")
    assert (d["not_before_core"], d["expires_core"]) == (160131600, 160131600 + 2592000)
    assert minter.calls == [("LCI7-0001", "recall", {"cause": "unpaid_balance", "days": 7, "seq": 1},
                             160131600, 2592000)]
    assert bytes.fromhex(d["token"]) == json.dumps(list(minter.calls[0])).encode()


def test_pending_directives_are_minted_later_by_issue_pending():
    """Decided without keys: pending. `issue_pending` at 28 Jan 10:00 mints it with that time."""
    h, ref = _failing()
    h.to("2025-01-28T10:00")
    minter = FakeMinter()
    assert outbox.issue_pending(h.conn, minter, h.engine.now, h.policy.token_ttl) == 1
    [d] = h.directives(ref)
    assert d["status"] == "issued" and d["not_before_core"] == core_seconds(T("2025-01-28T10:00"))
    assert outbox.issue_pending(h.conn, minter, h.engine.now, h.policy.token_ttl) == 0


def test_clear_code_answered_once_from_the_request_code():
    """After full payment from lockout, the operator answers the handset's request code once; a
    second answer is refused (nothing left awaiting); a request for another action is refused."""

    class Desk:
        def answer(self, serial, request, action, lockout=None):
            return f"{serial}/{request}/{action}"

        def requested_action(self, request):
            return "unlock" if request.startswith("0") else "clear"

    h, ref = _failing()
    h.to("2025-02-04T12:00")
    h.engine.pay(ref, token="tok_visa")
    account_id = h.account(ref).id
    with pytest.raises(RuleError, match="asked for a 'unlock' code"):
        outbox.answer_code(h.conn, account_id, "0234-5678", Desk(), h.engine.now)
    code = outbox.answer_code(h.conn, account_id, "1234-5678", Desk(), h.engine.now)
    assert code == "LCI7-0001/1234-5678/clear"
    clear = h.directives(ref)[-1]
    assert (clear["status"], clear["request"], clear["code"]) == ("issued", "1234-5678", code)
    with pytest.raises(RuleError):
        outbox.answer_code(h.conn, account_id, "1234-5678", Desk(), h.engine.now)


def test_a_newer_lockout_retires_a_clear_code_never_asked_for():
    """Paid in full from lockout 1: the clear token is used, the keypad clear is never asked
    for. The balance goes unpaid again into lockout 2: the operator is refused a code for
    lockout 1 (it is marked superseded), and the new clear answers lockout 2."""

    class Desk:
        def answer(self, serial, request, action, lockout=None):
            return f"{serial}/{request}/{action}/{lockout}"

        def requested_action(self, request):
            return "clear"

    h, ref = _failing()
    h.to("2025-02-04T12:00")
    h.engine.pay(ref, token="tok_visa")
    first = h.directives(ref)[-1]
    assert (first["action"], first["delivery"], first["status"]) == ("clear", "code", "awaiting_request")
    h.to("2025-04-30T12:00")  # the card still fails: a new recall, then a new lockout
    assert h.status(ref) == "lockout"
    lockouts = [d["id"] for d in h.directives(ref) if d["action"] == "lockout"]
    assert len(lockouts) == 2 and first["args"]["seq"] == lockouts[0]
    account_id = h.account(ref).id
    with pytest.raises(RuleError, match="newer recall or lockout"):
        outbox.answer_code(h.conn, account_id, "1234-5678", Desk(), h.engine.now)
    assert next(d for d in h.directives(ref) if d["id"] == first["id"])["status"] == "superseded"
    with pytest.raises(RuleError, match="no keypad code is authorized"):
        outbox.answer_code(h.conn, account_id, "1234-5678", Desk(), h.engine.now)
    h.engine.pay(ref, token="tok_visa")
    code = outbox.answer_code(h.conn, account_id, "1234-5678", Desk(), h.engine.now)
    assert code == f"LCI7-0001/1234-5678/clear/{lockouts[1]}"
