"""The portal's door to the billing engine: opens it on the configured store and reads or acts
through its Python API. Every money figure the pages show comes from here, in integer cents,
as the engine computed it; pages only format it."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from django.conf import settings

from provider.billing import directives as outbox
from provider.billing import opening, reports
from provider.billing.errors import BillingError, InputError, NotFound, RuleError

__all__ = ["BillingError", "InputError", "NotFound", "RuleError", "engine", "moment", "unix"]


def store_location() -> str:
    return settings.BILLING_URL


@contextlib.contextmanager
def engine():
    """An Engine on the billing store (SQLite or PostgreSQL, by its URL), closed afterwards."""
    signer = None
    if settings.BILLING_SIGNING_KEY:
        from provider.billing.signing import load_token_minter
        signer = load_token_minter(settings.BILLING_SIGNING_KEY)
    opened = opening.open_engine(store_location(), signer=signer)
    try:
        yield opened
    finally:
        opened.disconnect()


def moment(t: int | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def unix(d: datetime) -> int:
    return int(d.timestamp())


def _parse_iso(text):
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def account(ref: str) -> dict:
    """The account page's figures: the engine's view, the next bill, the keypad code state."""
    with engine() as e:
        view = reports.account_view(e.conn, ref)
        a = e.store.account_by_ref(ref)
        next_bill = e.next_bill_quote(ref)
        code_ready = e.conn.execute(
            "SELECT COUNT(*) FROM directive WHERE account_id = ? AND status = ?",
            (a.id, outbox.AWAITING_REQUEST)).fetchone()[0] > 0
        now = e.now
    for key in ("opened_at", "paid_through", "next_billing_at", "next_attempt_at",
                "appointment_at", "installed_at", "removed_at", "closed_at", "past_due_since",
                "recall_at", "lockout_at", "initial_payment_at", "billing_anchor_at"):
        view[key] = _parse_iso(view[key])
    if view["pending_change"]:
        view["pending_change"]["effective"] = _parse_iso(view["pending_change"]["effective"])
    view["next_bill"] = dict(next_bill, at=moment(next_bill["at"])) if next_bill else None
    view["code_ready"] = code_ready
    view["now"] = moment(now)
    return view


def statement(ref: str) -> dict:
    with engine() as e:
        a = e.store.account_by_ref(ref)
        invoices = reports.invoices(e.conn, a.id)
        payments = reports.payments(e.conn, a.id)
        notices = e.conn.execute(
            "SELECT id, at, kind, attempt_at, amount, subject, body FROM notice"
            " WHERE account_id = ? ORDER BY at, id", (a.id,)).fetchall()
    for inv in invoices:
        inv["issued_at"], inv["due_at"] = _parse_iso(inv["issued_at"]), _parse_iso(inv["due_at"])
        if inv["period"]:
            inv["period"] = [_parse_iso(x) for x in inv["period"]]
    for p in payments:
        p["at"] = _parse_iso(p["at"])
    return {"invoices": invoices, "payments": payments,
            "notices": [{"id": n[0], "at": moment(n[1]), "kind": n[2], "attempt_at": moment(n[3]),
                         "amount": n[4], "subject": n[5], "body": n[6]} for n in notices]}


def now() -> datetime:
    with engine() as e:
        return moment(e.now)
