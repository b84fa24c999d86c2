"""Read-only views of the billing database: account, statement, ledger, notices, directives,
timeline, and the ledger checks (every entry balances; balances from postings alone).

JSON conventions: money is integer cents; times are ISO 8601 UTC strings; every list is in the
order things happened.
"""

from __future__ import annotations

import json

from .clock import iso
from .money import fmt
from .store import RECEIVABLE, Store

CASH = "cash"


def _rows(conn, sql, args=()):
    cursor = conn.execute(sql, args)
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row, strict=True)) for row in cursor]


def account_view(conn, ref: str) -> dict:
    store = Store(conn)
    a = store.account_by_ref(ref)
    balance = store.balance(a.id)
    pending = {}
    if a.pending_apply_at is not None:
        if a.pending_method_token is not None:
            pending["payment_method"] = _mask(a.pending_method_token)
        if a.pending_theft_protection is not None:
            pending["theft_protection"] = bool(a.pending_theft_protection)
        if a.pending_cycle_weeks is not None:
            pending["cycle_weeks"] = a.pending_cycle_weeks
        pending["effective"] = iso(a.pending_apply_at)
    return {
        "ref": a.ref,
        "serial": a.serial,
        "email": a.email,
        "status": a.status,
        "balance": balance,
        "location": {"state": a.tax_state, "county": a.tax_county},
        "cycle_weeks": a.cycle_weeks,
        "theft_protection": bool(a.theft_protection),
        "payment_method": _mask(a.method_token),
        "opened_at": iso(a.opened_at),
        "initial_payment_at": iso(_initial_paid_at(conn, a.id)),
        "billing_anchor_at": iso(a.anchor_at),
        "paid_through": iso(a.paid_through),
        "next_billing_at": iso(a.next_bill_at),
        "next_attempt_at": iso(a.attempt_at),
        "appointment_at": iso(a.appointment_at),
        "installed_at": iso(a.installed_at),
        "removed_at": iso(a.removed_at),
        "closed_at": iso(a.closed_at),
        "past_due_since": iso(a.past_due_since),
        "recall_at": iso(a.recall_at),
        "lockout_at": iso(a.lockout_at),
        "cycle_switch_eligible_since": iso(a.switch_eligible_at),
        "pending_change": pending or None,
    }


def _initial_paid_at(conn, account_id: int) -> int | None:
    """When the initial invoice was paid in full (None: unpaid, or voided). Usually the billing
    anchor too, except when it fell overdue first: the schedule then runs from the due date."""
    row = conn.execute(
        "SELECT SUM(p.amount), MAX(CASE WHEN p.cause = 'payment' THEN p.at END),"
        " SUM(CASE WHEN p.cause = 'payment' THEN 1 ELSE 0 END) FROM posting p"
        " JOIN invoice i ON i.id = p.invoice_id WHERE p.account_id = ? AND i.kind = 'initial'"
        f" AND p.book = '{RECEIVABLE}'", (account_id,)).fetchone()
    outstanding, paid_at, payments = row
    return paid_at if outstanding == 0 and payments else None


def _mask(token):
    if token is None:
        return None
    return token if len(token) <= 8 else token[:4] + "…" + token[-4:]


def invoices(conn, account_id: int) -> list[dict]:
    store = Store(conn)
    outstanding = store.outstanding_by_invoice(account_id)
    result = []
    for inv in store.invoices_of(account_id):
        left = outstanding.get(inv["id"], 0)
        if inv["kind"] == "credit_note":
            state = "credit" if left else "applied"
        else:
            state = "paid" if left == 0 else ("partly paid" if left < inv["total"] else "open")
        result.append({
            "number": inv["number"],
            "kind": inv["kind"],
            "issued_at": iso(inv["issued_at"]),
            "due_at": iso(inv["due_at"]),
            "period": [iso(inv["period_start"]), iso(inv["period_end"])]
            if inv["period_start"] is not None else None,
            "cycle_weeks": inv["cycle_weeks"],
            "collection": inv["collection"],
            "lines": [{"item": ln["item"], "label": ln["label"], "amount": ln["amount"],
                       "taxable": ln["taxable"]} for ln in inv["lines"]],
            "subtotal": inv["subtotal"],
            "tax_rate": inv["tax_rate"],
            "tax": inv["tax"],
            "total": inv["total"],
            "outstanding": left,
            "status": state,
            "memo": inv["memo"],
            "_id": inv["id"],
            "_refers_to": inv["refers_to"],
        })
    numbers = {i["_id"]: i["number"] for i in result}
    for i in result:
        i["refers_to"] = numbers.get(i.pop("_refers_to"))
        i.pop("_id")
    return result


def payments(conn, account_id: int) -> list[dict]:
    return [{
        "key": p["idem_key"], "at": iso(p["at"]), "kind": p["kind"], "attempt": p["attempt"],
        "method": p["method_token"], "amount": p["amount"], "status": p["status"],
        "decline_code": p["decline_code"], "processor_ref": p["processor_ref"],
        "request_key": p["request_key"],
    } for p in _rows(conn, "SELECT * FROM payment WHERE account_id = ? ORDER BY at, id",
                     (account_id,))]


def notices(conn, account_id: int | None = None) -> list[dict]:
    sql = ("SELECT n.*, a.ref FROM notice n JOIN account a ON a.id = n.account_id"
           + (" WHERE n.account_id = ?" if account_id is not None else "") + " ORDER BY n.at, n.id")
    return [{"account": n["ref"], "at": iso(n["at"]), "kind": n["kind"],
             "attempt_at": iso(n["attempt_at"]), "amount": n["amount"], "subject": n["subject"],
             "body": n["body"]}
            for n in _rows(conn, sql, (account_id,) if account_id is not None else ())]


def directives(conn, account_id: int | None = None) -> list[dict]:
    sql = ("SELECT d.*, a.ref FROM directive d JOIN account a ON a.id = d.account_id"
           + (" WHERE d.account_id = ?" if account_id is not None else "") + " ORDER BY d.id")
    return [{"id": d["id"], "account": d["ref"], "serial": d["serial"],
             "decided_at": iso(d["decided_at"]), "action": d["action"],
             "args": json.loads(d["args"]), "delivery": d["delivery"], "status": d["status"],
             "issued_at": iso(d["issued_at"]), "key_id": d["key_id"],
             "not_before_core": d["not_before_core"], "expires_core": d["expires_core"],
             "token": d["token"], "request": d["request"], "code": d["code"]}
            for d in _rows(conn, sql, (account_id,) if account_id is not None else ())]


def history(conn, account_id: int) -> list[dict]:
    return [{"at": iso(h["at"]), "event": h["event"], "status": h["status"], "detail": h["detail"]}
            for h in _rows(conn, "SELECT * FROM history WHERE account_id = ? ORDER BY id",
                           (account_id,))]


def ledger(conn, account_id: int | None = None) -> list[dict]:
    """Journal entries with their postings, in the order they were written."""
    if account_id is None:
        rows = _rows(conn, "SELECT p.*, a.ref AS account_ref, i.number AS invoice_number"
                     " FROM posting p JOIN account a ON a.id = p.account_id"
                     " LEFT JOIN invoice i ON i.id = p.invoice_id ORDER BY p.id")
    else:
        rows = _account_postings(conn, account_id)
    entries: dict[int, dict] = {}
    for p in rows:
        e = entries.setdefault(p["entry_id"], {"entry": p["entry_id"], "at": iso(p["at"]),
                                               "account": p["account_ref"], "cause": p["cause"],
                                               "ref": p["ref"], "postings": []})
        e["postings"].append({"book": p["book"], "invoice": p["invoice_number"],
                              "amount": p["amount"]})
    return list(entries.values())


def _account_postings(conn, account_id: int) -> list[dict]:
    """Every posting of one account's entries, in the order written. Every entry of an account
    moves its receivable (found through the receivable index), and an entry's postings are
    consecutive ids numbered from line 1, so each entry is read as a range of ids from its first
    posting (id - line + 1) to where the next entry starts: no index on entry_id is needed."""
    firsts = [first for (first,) in conn.execute(
        f"SELECT DISTINCT id - line + 1 FROM posting WHERE account_id = ? AND book = '{RECEIVABLE}'"
        " ORDER BY 1", (account_id,))]
    found = []
    for first in firsts:
        entry_id = None
        start, limit = first, 16
        while True:
            rows = _rows(conn, "SELECT * FROM posting WHERE id >= ? ORDER BY id LIMIT ?",
                         (start, limit))
            for p in rows:
                if entry_id is None:
                    entry_id = p["entry_id"]
                if p["entry_id"] != entry_id:
                    break
                found.append(p)
            else:
                if len(rows) == limit:  # the entry may go on: read further
                    start, limit = rows[-1]["id"] + 1, limit * 4
                    continue
            break
    ref = conn.execute("SELECT ref FROM account WHERE id = ?", (account_id,)).fetchone()
    invoices = {i for i in (p["invoice_id"] for p in found) if i is not None}
    numbers = {}
    for i in invoices:
        numbers[i] = conn.execute("SELECT number FROM invoice WHERE id = ?", (i,)).fetchone()[0]
    for p in found:
        p["account_ref"] = ref[0] if ref else None
        p["invoice_number"] = numbers.get(p["invoice_id"])
    return found


def check_ledger(conn) -> dict:
    """The ledger's own invariants: each entry sums to zero, so the whole ledger does."""
    unbalanced = [row[0] for row in conn.execute(
        "SELECT entry_id FROM posting GROUP BY entry_id HAVING SUM(amount) <> 0")]
    total = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM posting").fetchone()[0]
    books = {book: amount for book, amount in conn.execute(
        "SELECT book, SUM(amount) FROM posting GROUP BY book ORDER BY book")}
    entries = conn.execute("SELECT COUNT(DISTINCT entry_id) FROM posting").fetchone()[0]
    return {"balanced": not unbalanced and total == 0, "unbalanced_entries": unbalanced,
            "entries": entries, "books": books}


def timeline(conn, account_id: int) -> list[dict]:
    """One row per moment something happened: what happened, then the state and the balance."""
    happenings: dict[int, list] = {}

    def add(at, text):
        happenings.setdefault(at, []).append(text)

    for inv in _rows(conn, "SELECT issued_at, number, kind, total FROM invoice WHERE account_id = ?"
                     " ORDER BY id", (account_id,)):
        add(inv["issued_at"], f"{inv['kind']} {inv['number']} {fmt(inv['total'])}")
    for p in _rows(conn, "SELECT at, kind, amount, status, decline_code FROM payment"
                   " WHERE account_id = ? ORDER BY id", (account_id,)):
        what = "refund" if p["kind"] == "refund" else "payment"
        add(p["at"], f"{what} {fmt(p['amount'])} {p['status']}"
            + (f" ({p['decline_code']})" if p["decline_code"] else ""))
    for n in _rows(conn, "SELECT at, kind FROM notice WHERE account_id = ? ORDER BY id",
                   (account_id,)):
        add(n["at"], f"notice {n['kind']}")
    for d in _rows(conn, "SELECT decided_at, action, delivery FROM directive WHERE account_id = ?"
                   " ORDER BY id", (account_id,)):
        add(d["decided_at"], f"directive {d['action']} ({d['delivery']})")
    states = _rows(conn, "SELECT at, event, status FROM history WHERE account_id = ? ORDER BY id",
                   (account_id,))
    for h in states:
        add(h["at"], h["event"])
    moves = _rows(conn, "SELECT at, SUM(amount) AS amount FROM posting WHERE account_id = ?"
                  f" AND book = '{RECEIVABLE}' GROUP BY at ORDER BY at", (account_id,))
    result = []
    balance = 0
    status = None
    mi = si = 0
    for at in sorted(happenings):
        while mi < len(moves) and moves[mi]["at"] <= at:
            balance += moves[mi]["amount"]
            mi += 1
        while si < len(states) and states[si]["at"] <= at:
            status = states[si]["status"]
            si += 1
        result.append({"at": iso(at), "events": happenings[at], "status": status,
                       "balance": balance})
    return result


def statement(conn, ref: str) -> dict:
    store = Store(conn)
    a = store.account_by_ref(ref)
    return {
        "account": account_view(conn, ref),
        "invoices": invoices(conn, a.id),
        "payments": payments(conn, a.id),
        "notices": notices(conn, a.id),
        "directives": directives(conn, a.id),
        "history": history(conn, a.id),
    }


def statement_text(data: dict) -> str:
    a = data["account"]
    out = [
        f"Statement for {a['ref']}  (device {a['serial']}, {a['email']})",
        f"  status {a['status']}   balance {fmt(a['balance'])}   "
        f"{a['cycle_weeks']}-week cycle   theft protection {'yes' if a['theft_protection'] else 'no'}",
        f"  location {a['location']['state']}/{a['location']['county']}   payment method "
        f"{a['payment_method'] or '(none)'}",
        f"  paid through {a['paid_through'] or '-'}   next billing {a['next_billing_at'] or '-'}   "
        f"next attempt {a['next_attempt_at'] or '-'}",
    ]
    if a["cycle_switch_eligible_since"]:
        out.append(f"  eligible for a 4/8-week cycle since {a['cycle_switch_eligible_since']}")
    if a["pending_change"]:
        out.append(f"  pending change: {a['pending_change']}")
    out.append("")
    out.append("Invoices")
    for inv in data["invoices"]:
        period = f" {inv['period'][0][:10]}..{inv['period'][1][:10]}" if inv["period"] else ""
        out.append(f"  {inv['number']}  {inv['issued_at'][:10]}  {inv['kind']:<14}{period}"
                   f"  total {fmt(inv['total']):>10}  {inv['status']}"
                   + (f" (owes {fmt(inv['outstanding'])})" if inv["outstanding"] > 0 else ""))
        for ln in inv["lines"]:
            out.append(f"      {ln['label']:<58} {fmt(ln['amount']):>10}"
                       + (" T" if ln["taxable"] else ""))
        if inv["tax"]:
            out.append(f"      {'Sales tax ' + inv['tax_rate']:<58} {fmt(inv['tax']):>10}")
    out.append("")
    out.append("Payments")
    for p in data["payments"]:
        out.append(f"  {p['at'][:16]}  {p['kind']:<10} {p['attempt']:<10} {fmt(p['amount']):>10}  "
                   f"{p['status']}" + (f" ({p['decline_code']})" if p["decline_code"] else ""))
    if data["notices"]:
        out.append("")
        out.append("Notices")
        for n in data["notices"]:
            when = f" -> attempt {n['attempt_at'][:16]}" if n["attempt_at"] else ""
            out.append(f"  {n['at'][:16]}  {n['kind']:<18} {n['subject']}{when}")
    if data["directives"]:
        out.append("")
        out.append("Device directives")
        for d in data["directives"]:
            out.append(f"  {d['decided_at'][:16]}  {d['action']:<8} {d['delivery']:<6} "
                       f"{d['status']:<17} {'; '.join(f'{k} {v}' for k, v in sorted(d['args'].items())) or '-'}")
    return "\n".join(out)
