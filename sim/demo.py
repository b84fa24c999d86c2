"""`make demo`: the seeds' whole story, end to end, on the simulator.

One client, one LCI-777, eight weeks. Billing (provider/billing), the handset (the real core
in the simulator), the technician's tool (host_tools/visit.py over the host link), the
provider's keys (host_tools/keys, tokens, codes) and the handsets' data link (provider/link:
a real link server on 127.0.0.1 that the handset's modem calls while it has coverage; billing's
signed directives reach the handset that way, acknowledged) act on one virtual clock:

  installation under a signed work order; daily driving with start tests and rolling retests
  (and one failed start test); the second charge fails — the 48-hour notice, the retry, the
  late fee; seven days on, early service recall shows on the handset; the recall runs out
  into a lockout by the handset's own clock; the client pays in full and unlocks with a keypad
  code from the provider; a service visit downloads and verifies the log and calibrates;
  removal under a work order; the final bill.

It prints a readable timeline and writes out/demo/report.html: the timeline and an SVG chart
of the handset's compliance state and the account's balance over time.

    python -m sim.demo [--out out/demo] [--seed 7] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from host_tools import cli
from host_tools.visit import Visit, receipt_text
from protocol.coretime import DAY, EPOCH_UNIX, HOUR
from provider.billing import directives as billing_directives
from provider.billing import reports, schema
from provider.billing.engine import Engine
from provider.billing.money import fmt
from provider.billing.policy import load_policy
from provider.billing.signing import CodeDesk, TokenMinter
from provider.billing.simulated_processor import SimulatedProcessor
from provider.link import store as link_store
from provider.link.server import ThreadedLinkServer
from sim import demo_report, driving
from sim.provider import Provider
from sim.simulator import Simulator
from sim.timeline import stamp
from sim.transport import open_client
from sim.uplink import dial

SERIAL = "LCI7-004711"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday morning
CARD = "tok_client_card"  # the client's card on file: its behaviour is scripted below


@dataclass
class Line:
    t: int  # core seconds
    source: str
    text: str
    compliance: str
    display: str
    balance: int | None


@dataclass
class World:
    seed: int
    quiet: bool
    out: Path | None = None
    lines: list[Line] = field(default_factory=list)
    samples: list[tuple[int, str, int]] = field(default_factory=list)  # (t, compliance, balance)

    def __post_init__(self):
        self.t0 = int(START.timestamp()) - EPOCH_UNIX
        self.provider = Provider(self.seed, SERIAL, start_s=self.t0)
        self.sim = Simulator(seed=self.seed, identity=self.provider.identity(), start_s=self.t0)
        # billing and the link server share one database file (docs/link.md)
        folder = self.out or Path(tempfile.mkdtemp(prefix="lci-demo-"))
        folder.mkdir(parents=True, exist_ok=True)
        self.db_path = folder / "billing.db"
        for leftover in (self.db_path, *folder.glob("billing.db-*")):
            leftover.unlink(missing_ok=True)  # an earlier run's database
        self.conn = schema.connect(self.db_path)
        schema.create(self.conn)
        Engine.initialize(self.conn, load_policy(), self.unix(self.t0), self.seed)
        self.processor = SimulatedProcessor(seed=self.seed, failure_rate=0.0)
        self.engine = Engine(self.conn, self.engine_policy(), self.processor,
                             signer=TokenMinter(self.provider.billing, self.provider.billing.key_id))
        self.desk = CodeDesk(self.provider.master)
        self.billing_seen = 0
        self.coverage = True  # the handset's modem has coverage (the simulator's switch)
        self.calls: list[dict] = []  # what the link server says of each call
        self.last_call: int | None = None
        self.link = ThreadedLinkServer(str(self.db_path), clock=lambda: self.unix(self.now),
                                       on_session=self.calls.append)
        self.link_address = self.link.start("127.0.0.1", 0)
        self.link_db = link_store.connect(str(self.db_path))
        self.ref = ""
        self.sim.listeners.append(self._device_event)

    def engine_policy(self):
        return Engine.stored_policy(self.conn)

    # -- time --------------------------------------------------------------------------------------
    @staticmethod
    def unix(core: int) -> int:
        return core + EPOCH_UNIX

    @property
    def now(self) -> int:
        return self.t0 + self.sim.t_ms // 1000

    def at(self, day: int, hour: float = 0) -> int:
        return self.t0 + day * DAY + int(hour * HOUR)

    def stamp(self, t: int) -> str:
        """The same time as the report shows it: ISO 8601 UTC with the zone, and the story's day."""
        return stamp(t, self.t0)

    def until(self, t: int) -> None:
        """Both worlds to time t, an hour at a time: the handset steps its own deadlines,
        billing runs what is due, and the handset's data link syncs signed directives."""
        while True:
            step = min(t, (self.now // HOUR + 1) * HOUR)
            if step > self.now:
                self.sim.run_until((step - self.t0) * 1000)
            self.engine.advance(max(self.unix(step), self.engine.now))
            self._billing_events()
            self._deliver_directives()
            if step >= t:
                break
        self.sample()

    # -- what everyone sees -------------------------------------------------------------------------
    def balance(self) -> int | None:
        if not self.ref:
            return None
        return reports.account_view(self.conn, self.ref)["balance"]

    def sample(self) -> None:
        self.samples.append((self.now, self.sim.state["compliance"] or "removed", self.balance() or 0))

    def say(self, source: str, text: str) -> None:
        line = Line(self.now, source, text, self.sim.state["compliance"], self.sim.display_text(),
                    self.balance())
        self.lines.append(line)
        if not self.quiet:
            money = "" if line.balance is None else f"  balance {fmt(line.balance)}"
            print(f"{self.stamp(line.t)}  {source:10} {text}{money}")
        self.sample()

    def _device_event(self, event: dict) -> None:
        if event.get("source") == "device" and event.get("event") == "compliance_change":
            record = event.get("detail") or {}
            why = record.get("detail") or ""
            self.say("handset", f"now {event['compliance']}{' (' + why + ')' if why else ''}"
                                f"   [{self.sim.display_text()}]")

    def _billing_events(self) -> None:
        """Print what billing did since the last look (invoices, charges, notices, fees)."""
        if not self.ref:
            return
        account = self.engine.store.account_by_ref(self.ref)
        rows = reports.timeline(self.conn, account.id)
        for row in rows[self.billing_seen:]:
            what = "; ".join(row["events"])
            when = _parse_iso(row["at"]) - EPOCH_UNIX
            self.lines.append(Line(when, "billing", what, self.sim.state["compliance"], "",
                                   row.get("balance")))
            if not self.quiet:
                money = "" if row.get("balance") is None else f"  balance {fmt(row['balance'])}"
                print(f"{self.stamp(when)}  {'billing':10} {what} [{row.get('status')}]{money}")
        self.billing_seen = len(rows)

    # -- the people ---------------------------------------------------------------------------------
    def cable(self):
        """The technician's (or back office's) laptop on the handset's USB port."""
        client = open_client(self.sim)
        client.hello()
        return client

    def token(self, client, action: str, args: dict, signer=None) -> dict:
        token = self.provider.token(action, args, now=client.status()["now"], signer=signer,
                                    session_nonce=client.session_nonce)
        return client.submit_token(token)

    def _deliver_directives(self) -> None:
        """The handset's modem calls the link server when it has coverage: at once when billing
        has a signed directive not yet acknowledged for it, and once a day anyway (the daily
        check-in uploads the log). The link server delivers the directives over the call."""
        if not self.ref or not self.coverage:
            return
        waiting = link_store.pending(self.link_db, SERIAL)
        if not waiting and self.last_call is not None and self.now - self.last_call < DAY:
            return
        self.last_call = self.now
        seen = len(self.calls)
        host, port = self.link_address
        result = dial(self.sim, host, port)
        for call in self.calls[seen:]:
            for d in call["delivered"] + call["refused"]:
                outcome = (f"handset: {d['detail']}" if d["answer"] == "token" else
                           f"handset had it already ({d['answer']})" if d["status"] == "delivered" else
                           f"handset refused it, nothing changed ({d['answer']}: {d['detail']})")
                self.say("back office", f"directive {demo_report.directive_text(d['action'], d['args'])} "
                                        f"delivered over the data link -> {outcome}")
        if not result["ok"]:
            self.say("modem", f"the call to the link server broke off: {result['error']}")

    def link_summary(self) -> dict:
        handset = link_store.handset(self.link_db, SERIAL) or {}
        return {"calls": len(self.calls),
                "delivered": sum(len(c["delivered"]) for c in self.calls),
                "refused": sum(len(c["refused"]) for c in self.calls),
                "records_uploaded": sum(c["uploaded"] for c in self.calls),
                "log_problems": [c["log_problem"] for c in self.calls if c["log_problem"]],
                "handset": handset}

    def close(self) -> None:
        self.link.stop()
        self.link_db.close()
        self.conn.close()

    def drive_day(self, day: int, *, first_brac: int = 0) -> dict:
        """Four trips: 07:30, 12:15, 17:40, 21:00; 20-55 minutes each, every retest answered."""
        totals = {"trips": 0, "tests": 0, "fails": 0, "retests": 0, "blocked": 0}
        for n, (hour, minutes) in enumerate(((7.5, 35), (12.25, 20), (17.67, 55), (21.0, 25))):
            self.until(self.at(day, hour))
            brac = first_brac if n == 0 else 0
            trip = driving.drive(self.sim, minutes, brac=brac)
            if trip.start_result == "fail":
                totals["fails"] += 1
                self.say("driver", f"start test FAILED at {brac / 10000:.3f} g/210L: "
                                   f"temporary lockout   [{self.sim.display_text()}]")
                self.until(self.now + 6 * 60)
                trip = driving.drive(self.sim, minutes, brac=0, on_start=lambda retry: self.say(
                    "driver", f"six minutes later, sober: start test {retry.start_result}"))
            if trip.start_result in ("blocked",):
                totals["blocked"] += 1
            totals["trips"] += 1 if trip.started else 0
            totals["tests"] += 1 if trip.start_result in ("pass", "fail") else 0
            totals["retests"] += trip.retests
        return totals

    def drive_days(self, first: int, last: int) -> None:
        for day in range(first, last + 1):
            t = self.drive_day(day)
            if t["blocked"]:
                self.say("driver", f"{cli.plural(t['blocked'], 'start')} refused by the handset "
                                   f"[{self.sim.display_text()}]")
            elif not self.quiet and day in (first, last):
                self.say("driver", f"4 drives: {t['tests']} start tests passed, {t['retests']} rolling "
                                   f"retests answered   [{self.sim.display_text()}]")

    # -- the story -----------------------------------------------------------------------------------
    def run(self) -> dict:
        self.say("handset", f"{SERIAL} leaves the factory provisioned: [{self.sim.display_text()}]")
        # acceptance of the terms and the initial payment
        self.ref = self.engine.open_account(serial=SERIAL, email="client@example.com", state="MN",
                                            county="Hennepin", token=CARD, pay_initial=True,
                                            appointment=self.unix(self.at(1, 10)))
        self.say("billing", f"terms accepted, account {self.ref} opened")
        self._billing_events()
        # installation at the service center, under the compliance department's work order
        self.until(self.at(1, 10))
        with self.cable() as client:
            result = self.token(client, "work_order",
                                {"order": "installation", "id": "WO-26-0105", "vehicle": "1FTFW1E50NFA00001"})
            self.engine.install(self.ref)
        self.say("technician", f"installs the handset; work order accepted: {result['detail']}")
        # two weeks of driving, one failed start test on day 3
        self.drive_days(1, 2)
        self.drive_day(3, first_brac=350)
        self.drive_days(4, 12)
        # the card runs out of funds before the second charge (two weeks after the first)
        self.processor.set_card(CARD, self.unix(self.at(13)), "insufficient_funds")
        self.say("bank", "the client's card will be declined from now on (insufficient funds)")
        self.drive_days(13, 20)
        # recall: the handset counts down by itself, and locks out by its own clock
        self.drive_day(21)
        self.coverage = False
        self.say("client", "a week away in the hills: the handset has no data link")
        self.drive_days(22, 27)
        self.drive_days(28, 28)
        self.until(self.at(28, 22))
        self.coverage = True
        self.say("client", "back in town: the handset's data link syncs again")
        # full payment, then the keypad code from the provider
        self.until(self.at(29, 8))
        self.coverage = False
        self.say("client", "the car is parked in an underground garage: the handset has no data link")
        self.until(self.at(29, 9))
        self.say("client", "updates the card on file in the client portal")
        self.engine.set_payment_method(self.ref, "tok_visa")
        self.until(self.now + 60)
        if self.balance():
            paid = self.engine.pay(self.ref)
            self.say("client", f"pays the balance in full: {paid['status']} {fmt(paid['amount'])}")
        self.until(self.at(29, 9.5))
        with self.cable() as client:
            request = client.code_request("clear")
        self.say("client", f"reads the request code off the handset and calls: {request}")
        account = self.engine.store.account_by_ref(self.ref)
        code = billing_directives.answer_code(self.conn, account.id, request, self.desk, self.unix(self.now))
        self.say("provider", f"billing is settled: the answer is {code[:4]} {code[4:]}")
        self.say("client", "keys the code in on the handset")
        for key in code:
            self.sim.press(key)
        self.sim.press("#")
        self.until(self.now + 60)
        self.coverage = True
        # the service visit the recall asked for
        self.until(self.at(30, 10))
        log_path = self.out / "service-visit-log.jsonl"
        log_path.unlink(missing_ok=True)  # a file left by an earlier run would be resumed
        with self.cable() as client:
            visit = Visit(client, signer_loader=lambda: self.provider.technician, say=lambda text: None)
            receipt = visit.service(reference=400, next_service_days=60, log_path=log_path)
        self.say("technician", f"service visit: {receipt['log']['records']} log records downloaded "
                               f"(chain {'verified' if receipt['log']['chain_ok'] else 'BROKEN'}), "
                               f"calibration {'PASS' if receipt['passed'] else 'FAIL'}, next service set")
        self.receipt = receipt
        # more weeks of ordinary driving
        self.drive_days(31, 54)
        # removal under a work order; billing ends and the final bill is made
        self.until(self.at(55, 14))
        with self.cable() as client:
            result = self.token(client, "work_order",
                                {"order": "removal", "id": "WO-26-0301", "vehicle": "1FTFW1E50NFA00001"})
        removed = self.engine.remove_device(self.ref)
        self.say("technician", f"removes the handset; work order accepted: {result['detail']}")
        refunded = removed.get("refunded", 0)
        self.say("billing", "device returned: billing ends"
                 + (f"; {fmt(refunded)} refunded" if refunded else "; nothing to refund"))
        self.until(self.now + 60)
        if self.balance():
            final = self.engine.pay(self.ref)
            self.say("client", f"pays the final bill: {final['status']} {fmt(final['amount'])}")
        self.until(self.at(56))
        self.final_bill()
        return self.summary()

    def final_bill(self) -> None:
        account = self.engine.store.account_by_ref(self.ref)
        invoices = reports.invoices(self.conn, account.id)
        payments = reports.payments(self.conn, account.id)
        if self.quiet:
            return
        print("\nfinal bill — account", self.ref)
        for inv in invoices:
            print(f"  {inv['issued_at'][:10]}  {inv['number']:16} {inv['kind']:12} "
                  f"tax {fmt(inv['tax']):>7}  total {fmt(inv['total']):>8}")
        paid = sum(p["amount"] for p in payments if p.get("status") == "succeeded" and p["kind"] != "refund")
        billed = sum(inv["total"] for inv in invoices)
        print(f"  billed {fmt(billed)}, paid {fmt(paid)}, balance {fmt(self.balance() or 0)}")

    def summary(self) -> dict:
        account = self.engine.store.account_by_ref(self.ref)
        invoices = reports.invoices(self.conn, account.id)
        return {
            "account": reports.account_view(self.conn, self.ref),
            "invoices": invoices,
            "payments": reports.payments(self.conn, account.id),
            "notices": reports.notices(self.conn, account.id),
            "directives": reports.directives(self.conn, account.id),
            "ledger": reports.check_ledger(self.conn),
            "device": self.sim.status(),
            "link": self.link_summary(),
        }


def _parse_iso(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the LCI-777 story, end to end, on the simulator")
    parser.add_argument("--out", default="out/demo", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    world = World(args.seed, args.quiet, out=args.out)
    if not args.quiet:
        print(f"LCI-777 demo: handset {SERIAL}, from {demo_report.iso(world.t0)} (times UTC; D = day of the story); "
              f"data link server on {world.link_address[0]}:{world.link_address[1]}\n")
    try:
        summary = world.run()
    finally:
        world.close()
    report = args.out / "report.html"
    report.write_text(demo_report.html_report(
        serial=SERIAL, lines=world.lines, samples=world.samples, t0=world.t0, summary=summary,
        receipt=receipt_text(world.receipt)))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    account = summary["account"]
    link = summary["link"]
    print(f"\nfinal: account {account['ref']} {account['status']}, balance {fmt(account['balance'])}; "
          f"handset {summary['device']['compliance']}")
    print(f"data link: {link['calls']} calls, {link['delivered']} directives delivered, "
          f"{link['refused']} refused, {link['records_uploaded']} log records uploaded and verified"
          + (f", log problems: {'; '.join(link['log_problems'])}" if link["log_problems"] else ""))
    print(f"report: {report.resolve()}")
    sys.stdout.flush()
    return 0


def console() -> int:
    """`make demo`: a reader that stops early (`| head`) ends the story quietly with 141."""
    try:
        return main()
    except BrokenPipeError:
        from sim.cli import EXIT_BROKEN_PIPE, _quiet_stdout

        _quiet_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(console())
