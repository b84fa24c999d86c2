"""What one lci-billing command wrote, for `-v`: the lines an operator checks a run by.

`Changes(conn)` notes where the append-only tables end before a command; `lines()` afterwards
reads what the command added, in the order it was written:
- account events (history: event, the status it left the account in, detail);
- journal entries (the ledger: cause, reference, each posting's book and amount in dollars);
- notices (kind and subject);
- directives decided, and directives whose status changed (signed, retired), with their
  arguments and, once signed, the token's validity window by the handset's clock.
Times are ISO 8601 with the zone, money in dollars, never a Python repr.
"""

from __future__ import annotations

import json

from host_tools import cli

from .clock import iso
from .money import fmt

_APPENDED = ("history", "posting", "notice", "directive")


def _rows(conn, sql: str, args=()) -> list[dict]:
    cursor = conn.execute(sql, args)
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row, strict=True)) for row in cursor]


def _core_iso(core_seconds: int | None) -> str:
    return "-" if core_seconds is None else cli.record_time(core_seconds)


class Changes:
    def __init__(self, conn):
        self.conn = conn
        self.marks = {table: conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]
                      for table in _APPENDED}
        self.directive_status = {row[0]: row[1] for row in conn.execute(
            "SELECT id, status FROM directive WHERE status <> 'superseded'")}

    def lines(self) -> list[str]:
        """What was written, by time (within one time: events, journal, notices, directives)."""
        return [line for _, line in sorted(self._timed(), key=lambda pair: pair[0])]

    def _timed(self) -> list[tuple[int, str]]:
        out = []
        for h in _rows(self.conn, "SELECT h.*, a.ref FROM history h JOIN account a ON a.id = h.account_id"
                       " WHERE h.id > ? ORDER BY h.id", (self.marks["history"],)):
            out.append((h["at"], f"account   {iso(h['at'])} {h['ref']}: {h['event'].replace('_', ' ')} -> {h['status']}"
                       + (f" ({h['detail']})" if h["detail"] else "")))
        entries: dict[int, dict] = {}
        for p in _rows(self.conn, "SELECT p.*, a.ref AS account_ref FROM posting p JOIN account a"
                       " ON a.id = p.account_id WHERE p.id > ? ORDER BY p.id", (self.marks["posting"],)):
            e = entries.setdefault(p["entry_id"], {"at": p["at"], "head": f"journal   {iso(p['at'])} {p['account_ref']}: "
                                                   f"entry {p['entry_id']} {p['cause']} {p['ref']}",
                                                   "postings": []})
            e["postings"].append(f"{p['book']} {fmt(p['amount'])}")
        out += [(e["at"], f"{e['head']}: {', '.join(e['postings'])}") for e in entries.values()]
        for n in _rows(self.conn, "SELECT n.*, a.ref FROM notice n JOIN account a ON a.id = n.account_id"
                       " WHERE n.id > ? ORDER BY n.id", (self.marks["notice"],)):
            out.append((n["at"], f"notice    {iso(n['at'])} {n['ref']}: {n['kind'].replace('_', ' ')}: "
                                 f"{n['subject']}"))
        for d in _rows(self.conn, "SELECT d.*, a.ref FROM directive d JOIN account a ON a.id = d.account_id"
                       " ORDER BY d.id"):
            new = d["id"] > self.marks["directive"]
            before = self.directive_status.get(d["id"])
            if not new and (before is None or before == d["status"]):
                continue
            what = "decided" if new else f"{before} -> {d['status']}"
            line = (f"directive {d['id']} {d['ref']} {d['serial']}: {d['action']} "
                    f"({cli.pairs(json.loads(d['args']))}) {what}")
            if d["status"] == "issued" and d["not_before_core"] is not None:
                line += (f"; token valid {_core_iso(d['not_before_core'])} .. {_core_iso(d['expires_core'])}"
                         f" by the handset's clock, key {d['key_id']}")
            out.append((d["issued_at"] if not new and d["issued_at"] is not None else d["decided_at"], line))
        return out
