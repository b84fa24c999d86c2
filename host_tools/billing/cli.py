"""lci-billing: the provider's billing back office on the command line.

Every command works on one database file (--db, or $LCI_BILLING_DB, default ./billing.db) whose
clock only moves with `advance`. The simulated processor keeps its own records beside it
(DB.processor). Money on the command line is dollars ("54.12"); in JSON it is integer cents.
Exit codes: 0 done, 1 refused by the rules (the line says why), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path

from . import directives as outbox
from . import reports, schema
from .clock import iso, parse_when
from .engine import Engine
from .errors import BillingError, InputError
from .money import fmt
from .policy import DAY, load_policy
from .simulated_processor import BEHAVIOURS, SimulatedProcessor, SqliteSimStore
from .store import Store

EXIT_RULE = 1
EXIT_INPUT = 2


def _when(text: str) -> int:
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _dollars(text: str) -> int:
    try:
        value = Decimal(text.lstrip("$"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount of dollars: {text!r}") from None
    cents = value * 100
    if cents != cents.to_integral_value() or cents <= 0:
        raise argparse.ArgumentTypeError(f"not a positive amount in cents: {text!r}")
    return int(cents)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lci-billing", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit codes: 0 done, 1 refused by the rules, 2 bad input.")
    p.add_argument("--db", default=os.environ.get("LCI_BILLING_DB", "billing.db"),
                   help="billing database file (default $LCI_BILLING_DB or ./billing.db)")
    p.add_argument("--signing-key", default=os.environ.get("LCI_BILLING_SIGNING_KEY"),
                   help="key file (billing-scope delegated key or root) to sign directive tokens")
    sub = p.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create the database with a policy and a clock")
    init.add_argument("--policy", help="policy TOML (default: seed 001)")
    init.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help='override a policy field, e.g. late_fee.reading="second_failed_attempt"')
    init.add_argument("--now", type=_when, help="initial clock (default: today 00:00 UTC)")
    init.add_argument("--seed", type=int, default=0, help="simulated processor seed")
    init.add_argument("--failure-rate", type=float, default=0.0,
                      help="simulated failure rate of cards without a fixed behaviour")

    acc = sub.add_parser("account", help="open, show, change and close accounts")
    asub = acc.add_subparsers(dest="action", required=True)
    op = asub.add_parser("open", help="open an account on acceptance of the terms")
    op.add_argument("--serial", required=True)
    op.add_argument("--email", required=True)
    op.add_argument("--state", required=True, help="two-letter state (sales tax)")
    op.add_argument("--county", default="", help="county (sales tax)")
    op.add_argument("--token", help="tokenized payment method")
    op.add_argument("--theft-protection", action="store_true")
    op.add_argument("--appointment", type=_when, help="installation appointment (default: "
                    "installed at acceptance)")
    op.add_argument("--pay-initial", action="store_true",
                    help="charge the initial payment to --token now")
    op.add_argument("--json", action="store_true")
    for name, help_text in (("show", "the account"), ("close", "close a settled returned account"),
                            ("install", "the device was installed"),
                            ("remove", "the device was removed: billing ends"),
                            ("cancel-installation", "cancel before installation (refund rules)")):
        cmd = asub.add_parser(name, help=help_text)
        cmd.add_argument("ref")
        if name == "show":
            cmd.add_argument("--json", action="store_true")
    rs = asub.add_parser("reschedule", help="move the installation appointment")
    rs.add_argument("ref")
    rs.add_argument("--to", type=_when, required=True)
    sc = asub.add_parser("set-cycle", help="move the account to a 2, 4 or 8-week cycle")
    sc.add_argument("ref")
    sc.add_argument("--weeks", type=int, required=True)
    tp = asub.add_parser("theft-protection", help="turn the theft protection plan on or off")
    tp.add_argument("ref")
    tp.add_argument("on_off", choices=("on", "off"))
    pp = asub.add_parser("prepay", help="the client pays cycles in advance")
    pp.add_argument("ref")
    pp.add_argument("--cycles", type=int, required=True)
    pp.add_argument("--token")

    pm = sub.add_parser("payment-method", help="the tokenized payment method on file")
    pmsub = pm.add_subparsers(dest="action", required=True)
    pms = pmsub.add_parser("set")
    pms.add_argument("ref")
    pms.add_argument("token")

    pay = sub.add_parser("pay", help="a payment by the client, or one reported by the processor")
    pay.add_argument("ref")
    pay.add_argument("--amount", type=_dollars, help="dollars (default: the balance)")
    pay.add_argument("--key", help="idempotency key of the payment event")
    pay.add_argument("--token", help="charge this token instead of the one on file")
    pay.add_argument("--external", action="store_true",
                     help="record a payment received elsewhere (needs --key)")

    card = sub.add_parser("card", help="simulated processor: a card's behaviour from a date")
    card.add_argument("token")
    card.add_argument("behaviour", choices=BEHAVIOURS)
    card.add_argument("--from", dest="from_at", type=_when, help="default: now")

    adv = sub.add_parser("advance", help="run everything due up to a date (the daily run)")
    group = adv.add_mutually_exclusive_group(required=True)
    group.add_argument("--to", type=_when)
    group.add_argument("--days", type=int)
    adv.add_argument("--batch-size", type=int, default=2000,
                     help="accounts per transaction (default 2000)")

    sub.add_parser("now", help="print the clock")
    st = sub.add_parser("statement", help="an account's statement")
    st.add_argument("ref")
    st.add_argument("--json", action="store_true")
    lg = sub.add_parser("ledger", help="journal entries; --check verifies the ledger")
    lg.add_argument("--account")
    lg.add_argument("--json", action="store_true")
    lg.add_argument("--check", action="store_true")
    nt = sub.add_parser("notices", help="email notices sent")
    nt.add_argument("--account")
    nt.add_argument("--json", action="store_true")
    dr = sub.add_parser("directives", help="the device directive outbox")
    dsub = dr.add_subparsers(dest="action")
    dl = dsub.add_parser("list")
    dl.add_argument("--account")
    dl.add_argument("--json", action="store_true")
    dsub.add_parser("issue", help="sign pending tokens (needs --signing-key)")
    da = dsub.add_parser("answer", help="answer a client's keypad request code (clear after "
                         "a lockout is paid in full)")
    da.add_argument("ref")
    da.add_argument("--request", required=True, help="the request code shown on the handset")
    da.add_argument("--master-secret", required=True, help="provider master secret file")
    sim = sub.add_parser("simulate", help="run a scenario file on a fresh database")
    sim.add_argument("scenario")
    sim.add_argument("--json", action="store_true")
    pol = sub.add_parser("policy", help="check or print a policy file")
    pol.add_argument("file", nargs="?", help="default: the stored policy, or seed 001")
    return p


def _overrides(pairs: list[str]) -> dict:
    result = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError("--set", pair, "expected FIELD=VALUE")
        field, raw = pair.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        result[field.strip()] = value
    return result


def _open(args, require=True):
    path = Path(args.db)
    if require and not path.exists():
        raise InputError(str(path), "", "no billing database here: run `lci-billing init` first")
    conn = schema.connect(path)
    if not schema.is_initialized(conn):
        raise InputError(str(path), "", "not a billing database: run `lci-billing init`")
    policy = Engine.stored_policy(conn)
    store = Store(conn)
    processor = SimulatedProcessor(SqliteSimStore(str(path) + ".processor"),
                                   seed=int(store.meta("seed", "0")),
                                   failure_rate=float(store.meta("failure_rate", "0")))
    signer = None
    if args.signing_key:
        from .signing import load_token_minter
        signer = load_token_minter(args.signing_key)
    return Engine(conn, policy, processor, signer=signer)


def _print(data, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        print(text if text is not None else data)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except InputError as exc:
        print(f"lci-billing: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except BillingError as exc:
        print(f"lci-billing: {exc}", file=sys.stderr)
        return EXIT_RULE


def _dispatch(args) -> int:
    cmd = args.command
    if cmd == "simulate":
        from .scenario import run
        signer = None
        if args.signing_key:
            from .signing import load_token_minter
            signer = load_token_minter(args.signing_key)
        report = run(args.scenario, signer=signer)
        _print(report, args.json, _scenario_text(report))
        return 0
    if cmd == "policy":
        if args.file:
            policy = load_policy(args.file)
        elif Path(args.db).exists():
            policy = Engine.stored_policy(schema.connect(args.db))
        else:
            policy = load_policy()
        print(f"{policy.source}: ok — {policy.name}; readings {policy.readings}")
        return 0
    if cmd == "init":
        path = Path(args.db)
        if path.exists():
            raise InputError(str(path), "", "already exists")
        policy = load_policy(args.policy, _overrides(args.set), overrides_source="--set")
        now = args.now if args.now is not None else (int(__import__("time").time()) // DAY) * DAY
        conn = schema.connect(path)
        schema.create(conn)
        Engine.initialize(conn, policy, now, args.seed)
        Store(conn).set_meta("failure_rate", str(args.failure_rate))
        print(f"{path}: billing database created; clock {iso(now)}; policy {policy.source}")
        return 0

    engine = _open(args)
    conn = engine.conn
    if cmd == "now":
        print(iso(engine.now))
    elif cmd == "advance":
        to = args.to if args.to is not None else engine.now + args.days * DAY
        engine.batch_size = max(1, args.batch_size)
        result = engine.advance(to)
        print(f"clock {iso(to)}: {result['accounts_processed']} account runs in "
              f"{result['batches']} batches")
    elif cmd == "account":
        return _account(engine, args)
    elif cmd == "payment-method":
        out = engine.set_payment_method(args.ref, args.token)
        eff = out["effective"]
        print(f"{args.ref}: payment method set, effective "
              f"{'now' if eff == 'now' else 'after the next billing date (' + iso(eff) + ')'}")
    elif cmd == "pay":
        out = engine.pay(args.ref, amount=args.amount, key=args.key, token=args.token,
                         external=args.external)
        if out["status"] == "duplicate":
            print(f"{args.ref}: payment {out['key']} already recorded: nothing changed")
        else:
            print(f"{args.ref}: payment {out['key']} of {fmt(out['amount'])} {out['status']}"
                  + (f" ({out['decline_code']})" if out.get("decline_code") else ""))
            return 0 if out["status"] == "succeeded" else EXIT_RULE
    elif cmd == "card":
        engine.processor.set_card(args.token, args.from_at or engine.now, args.behaviour)
        print(f"{args.token}: {args.behaviour} from {iso(args.from_at or engine.now)}")
    elif cmd == "statement":
        data = reports.statement(conn, args.ref)
        _print(data, args.json, reports.statement_text(data))
    elif cmd == "ledger":
        if args.check:
            result = reports.check_ledger(conn)
            print(json.dumps(result, indent=2) if args.json else
                  f"ledger {'balanced' if result['balanced'] else 'UNBALANCED'}: "
                  f"{result['entries']} entries; books "
                  + ", ".join(f"{b} {fmt(v)}" for b, v in result["books"].items()))
            return 0 if result["balanced"] else EXIT_RULE
        account_id = engine.store.account_by_ref(args.account).id if args.account else None
        entries = reports.ledger(conn, account_id)
        _print(entries, args.json, "\n".join(
            f"{e['entry']:>7} {e['at'][:16]} {e['account']} {e['cause']:<14} {e['ref']}\n"
            + "\n".join(f"          {p['book']:<28} {p['invoice'] or '':<14} {fmt(p['amount']):>11}"
                        for p in e["postings"]) for e in entries))
    elif cmd == "notices":
        account_id = engine.store.account_by_ref(args.account).id if args.account else None
        items = reports.notices(conn, account_id)
        _print(items, args.json, "\n".join(
            f"{n['at'][:16]} {n['account']} {n['kind']:<18} {n['subject']}"
            + (f" (attempt {n['attempt_at'][:16]})" if n["attempt_at"] else "") for n in items))
    elif cmd == "directives":
        return _directives(engine, args)
    return 0


def _account(engine: Engine, args) -> int:
    a = args.action
    if a == "open":
        ref = engine.open_account(serial=args.serial, email=args.email, state=args.state,
                                  county=args.county, token=args.token,
                                  theft_protection=args.theft_protection,
                                  appointment=args.appointment, pay_initial=args.pay_initial)
        view = reports.account_view(engine.conn, ref)
        _print(view, args.json, f"{ref}: opened ({view['status']}, balance "
                                f"{fmt(view['balance'])})")
    elif a == "show":
        view = reports.account_view(engine.conn, args.ref)
        _print(view, args.json, "\n".join(f"{k:>28}: {v}" for k, v in view.items()))
    elif a == "close":
        engine.close(args.ref)
        print(f"{args.ref}: closed")
    elif a == "install":
        engine.install(args.ref)
        print(f"{args.ref}: installed")
    elif a == "remove":
        out = engine.remove_device(args.ref)
        print(f"{args.ref}: removed; billed {out['billed'] or 'nothing more'}; refunded "
              f"{fmt(out['refunded'])}")
    elif a == "cancel-installation":
        out = engine.cancel_installation(args.ref)
        print(f"{args.ref}: installation cancelled; credited {fmt(out['credited'])}")
    elif a == "reschedule":
        out = engine.reschedule(args.ref, args.to)
        print(f"{args.ref}: rescheduled to {iso(args.to)} with {out['notice_hours']} h notice; "
              f"charged {', '.join(out['charged']) or 'nothing'}")
    elif a == "set-cycle":
        out = engine.set_cycle(args.ref, args.weeks)
        eff = out["effective"]
        print(f"{args.ref}: {args.weeks}-week cycle from "
              f"{eff if isinstance(eff, str) else iso(eff)}")
    elif a == "theft-protection":
        out = engine.set_theft_protection(args.ref, args.on_off == "on")
        eff = out["effective"]
        print(f"{args.ref}: theft protection {args.on_off} from "
              f"{eff if isinstance(eff, str) else iso(eff)}")
    elif a == "prepay":
        out = engine.prepay(args.ref, args.cycles, token=args.token)
        if out["status"] != "succeeded":
            print(f"{args.ref}: prepayment declined ({out['decline_code']})")
            return EXIT_RULE
        print(f"{args.ref}: prepaid {fmt(out['amount'])}, paid through "
              f"{iso(out['paid_through'])}")
    return 0


def _directives(engine: Engine, args) -> int:
    action = args.action or "list"
    if action == "list":
        account = getattr(args, "account", None)
        account_id = engine.store.account_by_ref(account).id if account else None
        items = reports.directives(engine.conn, account_id)
        _print(items, getattr(args, "json", False), "\n".join(
            f"{d['id']:>5} {d['decided_at'][:16]} {d['account']} {d['serial']:<14} "
            f"{d['action']:<8} {d['delivery']:<6} {d['status']:<17} {json.dumps(d['args'])}"
            for d in items))
    elif action == "issue":
        if engine.signer is None:
            raise InputError("--signing-key", "", "needed to sign pending directives")
        n = outbox.issue_pending(engine.conn, engine.signer, engine.now, engine.policy.token_ttl)
        print(f"{n} directive token(s) signed")
    elif action == "answer":
        from .signing import load_code_desk
        account = engine.store.account_by_ref(args.ref)
        code = outbox.answer_code(engine.conn, account.id, args.request,
                                    load_code_desk(args.master_secret), engine.now)
        print(code)
    return 0


def _scenario_text(report: dict) -> str:
    out = [f"{report['scenario']}  ({report['start'][:10]} .. {report['until'][:10]}; "
           f"readings {report['policy']['readings']})"]
    for row in report["timeline"]:
        out.append(f"  {row['at'][:16]}  {row['status'] or '-':<16} {fmt(row['balance']):>10}  "
                   + "; ".join(row["events"]))
    final = report["final"]
    out.append(f"final: {final['status']}, balance {fmt(final['balance'])}; ledger "
               f"{'balanced' if report['ledger']['balanced'] else 'UNBALANCED'}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
