"""lci-billing: the provider's billing back office on the command line.

Every command works on one database file (--db, or $LCI_BILLING_DB, default ./billing.db) whose
clock only moves with `advance`. The simulated processor keeps its own records beside it
(DB.processor). Money on the command line and in readable output is dollars ("54.12"); with
--json (every command has it) the output is one JSON value and money is integer cents.
Exit codes (host_tools/exitcodes.py, one table for the three tools): 0 done, 1 refused by the
rules (the line says why; also a declined payment and a scenario with an event not as
expected), 2 bad input, 130 Ctrl-C. When the reader of the output goes away (`| head`), the
command stops quietly with 141, like a process ended by SIGPIPE. --json goes before or after
the command; times are ISO 8601 with the zone.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import tomllib
from pathlib import Path

from host_tools import cli, exitcodes

from . import database, opening, reports, schema
from . import directives as outbox
from .clock import iso, parse_when
from .engine import MAX_ADVANCE_DAYS, Engine
from .errors import BillingError, InputError
from .money import fmt
from .policy import DAY, load_policy
from .simulated_processor import BEHAVIOURS
from .store import Store

EXIT_RULE = exitcodes.FAILED
EXIT_INPUT = exitcodes.USAGE
EXIT_PIPE = exitcodes.BROKEN_PIPE


def _device_time(text: str) -> int:
    """--device-time: the handset's clock (ISO 8601, or 'now': this computer's real time)."""
    if text == "now":
        return int(time.time())
    return _when(text)


def _when(text: str) -> int:
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_AMOUNT = re.compile(r"\$?(\d{1,12})(?:\.(\d{1,2}))?")


def _dollars(text: str) -> int:
    """'54.12' or '$54.12' -> 5412. Only plain digits with at most two decimals: no sign,
    exponent, Infinity or NaN; the engine checks the policy's maximum."""
    found = _AMOUNT.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"not an amount of dollars: {text!r} (expected digits with at most two decimals, "
            f"like 54.12)")
    cents = int(found.group(1)) * 100 + int((found.group(2) or "0").ljust(2, "0"))
    if cents <= 0:
        raise argparse.ArgumentTypeError(f"not a positive amount: {text!r}")
    return cents


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 0 <= value <= MAX_ADVANCE_DAYS:
        raise argparse.ArgumentTypeError(
            f"{value} days: expected 0 to {MAX_ADVANCE_DAYS} days per run")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lci-billing", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='shell completion: eval "$(register-python-argcomplete lci-billing)"\n\n'
                                + exitcodes.epilog(exitcodes.BILLING))
    p.add_argument("--db", default=opening.default_location(),
                   help="billing database: a file or sqlite:///FILE, or postgresql://... "
                        "(default $LCI_DATABASE_URL, else $LCI_BILLING_DB, else ./billing.db)")
    p.add_argument("--signing-key", default=os.environ.get("LCI_BILLING_SIGNING_KEY"),
                   help="key file (billing-scope delegated key or root) to sign directive tokens")
    cli.add_version(p, "lci-billing")
    sub = p.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create the database with a policy and a clock")
    init.add_argument("--policy", help="policy TOML (default: the provider's terms, default_policy.toml)")
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
    for name, help_text in (("show", "the account"), ("close", "close a settled returned account"),
                            ("install", "the device was installed"),
                            ("remove", "the device was removed: billing ends"),
                            ("cancel-installation", "cancel before installation (refund rules)")):
        cmd = asub.add_parser(name, help=help_text)
        cmd.add_argument("ref")
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
    pms = pmsub.add_parser("set", help="put a tokenized payment method on file")
    pms.add_argument("ref", help="account reference")
    pms.add_argument("token", help="the processor's payment-method token")

    pay = sub.add_parser("pay", help="a payment by the client, or one reported by the processor")
    pay.add_argument("ref")
    pay.add_argument("--amount", type=_dollars, help="dollars (default: the balance)")
    pay.add_argument("--key", help="idempotency key of the payment event")
    pay.add_argument("--token", help="charge this token instead of the one on file")
    pay.add_argument("--external", action="store_true",
                     help="record a payment received elsewhere (needs --key)")

    rf = sub.add_parser("refund", help="pay an account's credit back to its payment method")
    rf.add_argument("ref")
    rf.add_argument("--amount", type=_dollars, help="dollars (default: the whole credit)")
    rf.add_argument("--key", help="idempotency key of the refund request")
    rf.add_argument("--token", help="refund to this token instead of the one on file")

    card = sub.add_parser("card", help="simulated processor: a card's behaviour from a date")
    card.add_argument("token")
    card.add_argument("behaviour", choices=BEHAVIOURS)
    card.add_argument("--from", dest="from_at", type=_when, help="default: now")

    adv = sub.add_parser("advance", help="run everything due up to a date (the daily run)")
    group = adv.add_mutually_exclusive_group(required=True)
    group.add_argument("--to", type=_when)
    group.add_argument("--days", type=_days, help=f"0 to {MAX_ADVANCE_DAYS}")
    adv.add_argument("--batch-size", type=int, default=2000,
                     help="accounts per transaction (default 2000)")

    sub.add_parser("now", help="print the clock")
    st = sub.add_parser("statement", help="an account's statement")
    st.add_argument("ref")
    lg = sub.add_parser("ledger", help="journal entries; --check verifies the ledger")
    lg.add_argument("--account")
    lg.add_argument("--check", action="store_true")
    nt = sub.add_parser("notices", help="email notices sent")
    nt.add_argument("--account")
    dr = sub.add_parser("directives", help="the device directive outbox")
    dsub = dr.add_subparsers(dest="action")
    dl = dsub.add_parser("list", help="the directives decided, newest last")
    dl.add_argument("--account", help="only this account's")
    di = dsub.add_parser("issue", help="sign pending tokens (needs --signing-key)")
    device_time_help = ("date the tokens from the handset's clock (ISO 8601, or 'now': real time) "
                        "instead of the billing clock, so a handset on real time accepts them")
    di.add_argument("--device-time", type=_device_time, metavar="TIME", help=device_time_help)
    dx = dsub.add_parser("export", help="write a directive's signed token to a file for "
                         "`lci-tool token apply`")
    dx.add_argument("id", type=int, help="directive id (`lci-billing directives list`)")
    dx.add_argument("--out", required=True, metavar="FILE", help="token file to write (hex text)")
    dx.add_argument("--device-time", type=_device_time, metavar="TIME",
                    help=device_time_help.replace("the tokens", "the token") + " (signs it again: "
                    "needs --signing-key)")
    da = dsub.add_parser("answer", help="answer a client's keypad request code (clear after "
                         "a lockout is paid in full)")
    da.add_argument("ref")
    da.add_argument("--request", required=True, help="the request code shown on the handset")
    da.add_argument("--master-secret", required=True, help="provider master secret file")
    sim = sub.add_parser("simulate", help="run a scenario file on a fresh database")
    sim.add_argument("scenario")
    pol = sub.add_parser("policy", help="check or print a policy file")
    pol.add_argument("file", nargs="?", help="default: the stored policy, or the default terms")
    # --json, -v, -q anywhere: before or after the command (`directives --json list`, `--json now`)
    cli.add_output_options(
        p, json_help="print one JSON value (money in integer cents)",
        verbose_help="also list on stderr what the command wrote: account events, journal entries "
                     "with their postings, notices, directives decided or signed (with the token's "
                     "validity window)")
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


def _open(args):
    signer = None
    if args.signing_key:
        from .signing import load_token_minter
        signer = load_token_minter(args.signing_key)
    engine = opening.open_engine(args.db, signer=signer)
    args.opened.append(engine)
    if args.verbose:
        from .changes import Changes

        args.changes = Changes(engine.conn)
    return engine


def _exists(location: str) -> bool:
    """Is there a billing database at `location` (a file, or the tables on a server)?"""
    try:
        dialect = database.dialect_of(location)
    except ValueError as exc:
        raise InputError(location, "", str(exc)) from None
    if dialect == database.SQLITE:
        return Path(database.sqlite_path(location)).exists()
    conn = opening.connect(location, must_exist=False)
    try:
        return schema.is_initialized(conn)
    finally:
        conn.close()


def _print(data, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(cli.dumps(data))
    else:
        print(text if text is not None else cli._plain(data))


def _effective(value) -> str:
    return value if isinstance(value, str) else iso(value)


def main(argv: list[str] | None = None) -> int:
    # the reader went away (`lci-billing ledger | head`): 141, quietly, as SIGPIPE would
    parser = build_parser()
    cli.completion(parser)
    return cli.run("lci-billing", lambda: _main(parser, argv))


def _main(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = cli.defaults(parser.parse_args(argv), cli.OUTPUT_DEFAULTS)
    args.opened = []
    args.changes = None
    try:
        code = _dispatch(args)
        if args.changes is not None:
            for line in args.changes.lines():
                print(line, file=sys.stderr)
        return code
    except InputError as exc:
        cli.error("lci-billing", str(exc))
        return EXIT_INPUT
    except BillingError as exc:
        cli.error("lci-billing", str(exc))
        return EXIT_RULE
    finally:
        for engine in args.opened:  # a server connection is not left to the garbage collector
            engine.disconnect()


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
        missed = [e for e in report["events"] if not e["as_expected"]]
        if missed:
            print(f"lci-billing: {report['file']}: {len(missed)} "
                  f"event{'s' if len(missed) > 1 else ''} not as expected: "
                  + ", ".join(f"event[{e['event']}] {e['do']} {e['result']}" for e in missed),
                  file=sys.stderr)
            return EXIT_RULE
        return 0
    if cmd == "policy":
        if args.file:
            policy = load_policy(args.file)
        elif _exists(args.db):
            policy = Engine.stored_policy(opening.connect(args.db))
        else:
            policy = load_policy()
        _print({"source": policy.source, "ok": True, "name": policy.name,
                "readings": policy.readings, "overrides": policy.overrides}, args.json,
               f"{policy.source}: ok — {policy.name}; readings: {cli.pairs(policy.readings)}")
        return 0
    if cmd == "init":
        shown = database.describe(args.db)
        if _exists(args.db):
            raise InputError(shown, "", "already exists")
        policy = load_policy(args.policy, _overrides(args.set), overrides_source="--set")
        now = args.now if args.now is not None else (int(__import__("time").time()) // DAY) * DAY
        conn = opening.connect(args.db, must_exist=False)
        schema.create(conn)
        Engine.initialize(conn, policy, now, args.seed)
        Store(conn).set_meta("failure_rate", str(args.failure_rate))
        conn.close()
        _print({"db": shown, "clock": iso(now), "policy": policy.source}, args.json,
               f"{shown}: billing database created; clock {iso(now)}; policy {policy.source}")
        return 0

    engine = _open(args)
    conn = engine.conn
    if cmd == "now":
        _print({"clock": iso(engine.now)}, args.json, iso(engine.now))
    elif cmd == "advance":
        to = args.to if args.to is not None else engine.now + args.days * DAY
        engine.batch_size = max(1, args.batch_size)
        result = engine.advance(to)
        _print({"clock": iso(to), **result}, args.json,
               f"clock {iso(to)}: {cli.plural(result['accounts_processed'], 'account run')} in "
               f"{cli.plural(result['batches'], 'batch', 'batches')}"
               + (f" ({result['writer_batches']} written by the writer process)"
                  if result["writer_batches"] else ""))
    elif cmd == "account":
        return _account(engine, args)
    elif cmd == "payment-method":
        out = engine.set_payment_method(args.ref, args.token)
        eff = out["effective"]
        _print({"ref": args.ref, "effective": _effective(eff)}, args.json,
               f"{args.ref}: payment method set, effective "
               f"{'now' if eff == 'now' else 'after the next billing date (' + iso(eff) + ')'}")
    elif cmd == "pay":
        out = engine.pay(args.ref, amount=args.amount, key=args.key, token=args.token,
                         external=args.external)
        if out["status"] == "duplicate":
            _print({"ref": args.ref, **out}, args.json,
                   f"{args.ref}: payment {out['key']} already recorded: nothing changed")
        else:
            _print({"ref": args.ref, **out}, args.json,
                   f"{args.ref}: payment {out['key']} of {fmt(out['amount'])} {out['status']}"
                   + (f" ({out['decline_code']})" if out.get("decline_code") else ""))
            return 0 if out["status"] == "succeeded" else EXIT_RULE
    elif cmd == "refund":
        out = engine.refund(args.ref, amount=args.amount, key=args.key, token=args.token)
        if out["status"] == "duplicate":
            _print({"ref": args.ref, **out}, args.json,
                   f"{args.ref}: refund {out['key']} already recorded: nothing changed")
        else:
            _print({"ref": args.ref, **out}, args.json,
                   f"{args.ref}: refund {out['key']} of {fmt(out['amount'])} {out['status']}"
                   + (f" ({out['decline_code']})" if out.get("decline_code") else "")
                   + f"; balance {fmt(out['balance'])}")
            return 0 if out["status"] == "succeeded" else EXIT_RULE
    elif cmd == "card":
        when = args.from_at or engine.now
        engine.processor.set_card(args.token, when, args.behaviour)
        _print({"token": args.token, "behaviour": args.behaviour, "from": iso(when)}, args.json,
               f"{args.token}: {args.behaviour} from {iso(when)}")
    elif cmd == "statement":
        data = reports.statement(conn, args.ref)
        _print(data, args.json, reports.statement_text(data))
    elif cmd == "ledger":
        if args.check:
            result = reports.check_ledger(conn)
            print(cli.dumps(result) if args.json else
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
        _print(view, args.json, account_text(view))
    elif a == "close":
        engine.close(args.ref)
        _print({"ref": args.ref, "status": "closed"}, args.json, f"{args.ref}: closed")
    elif a == "install":
        engine.install(args.ref)
        view = reports.account_view(engine.conn, args.ref)
        _print({"ref": args.ref, "status": view["status"], "installed_at": view["installed_at"],
                "balance": view["balance"]}, args.json,
               f"{args.ref}: installed ({view['status']}, balance {fmt(view['balance'])})")
    elif a == "remove":
        out = engine.remove_device(args.ref)
        view = reports.account_view(engine.conn, args.ref)
        _print({"ref": args.ref, "status": view["status"], **out, "balance": view["balance"]},
               args.json,
               f"{args.ref}: removed; billed {', '.join(out['billed']) or 'nothing more'}; "
               f"refunded {fmt(out['refunded'])}; balance {fmt(view['balance'])}")
    elif a == "cancel-installation":
        out = engine.cancel_installation(args.ref)
        _print({"ref": args.ref, "status": "cancelled", **out}, args.json,
               f"{args.ref}: installation cancelled; credited {fmt(out['credited'])}")
    elif a == "reschedule":
        out = engine.reschedule(args.ref, args.to)
        _print({"ref": args.ref, "to": iso(args.to), **out}, args.json,
               f"{args.ref}: rescheduled to {iso(args.to)} with {out['notice_hours']} h notice; "
               f"charged {', '.join(out['charged']) or 'nothing'}")
    elif a == "set-cycle":
        out = engine.set_cycle(args.ref, args.weeks)
        eff = _effective(out["effective"])
        _print({"ref": args.ref, "weeks": args.weeks, "effective": eff}, args.json,
               f"{args.ref}: {args.weeks}-week cycle from {eff}")
    elif a == "theft-protection":
        out = engine.set_theft_protection(args.ref, args.on_off == "on")
        eff = _effective(out["effective"])
        _print({"ref": args.ref, "theft_protection": args.on_off == "on", "effective": eff},
               args.json, f"{args.ref}: theft protection {args.on_off} from {eff}")
    elif a == "prepay":
        out = engine.prepay(args.ref, args.cycles, token=args.token)
        if out["status"] != "succeeded":
            _print({"ref": args.ref, **out}, args.json,
                   f"{args.ref}: prepayment declined ({out['decline_code']})")
            return EXIT_RULE
        _print({"ref": args.ref, **out, "paid_through": iso(out["paid_through"])}, args.json,
               f"{args.ref}: prepaid {fmt(out['amount'])}, paid through "
               f"{iso(out['paid_through'])}")
    return 0


MONEY_FIELDS = ("balance",)


def account_text(view: dict) -> str:
    """The account view for people: money in dollars, places and flags in words, '-' for none."""
    def show(key, value):
        if value is None:
            return "-"
        if key in MONEY_FIELDS:
            return fmt(value)
        if key == "location":
            return ", ".join(x for x in (value["state"], value["county"]) if x)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict):
            return "; ".join(f"{k} {show(k, v)}" for k, v in value.items())
        return str(value)
    return "\n".join(f"{k:>28}: {show(k, v)}" for k, v in view.items())


def _directives(engine: Engine, args) -> int:
    action = args.action or "list"
    if action == "list":
        account = getattr(args, "account", None)
        account_id = engine.store.account_by_ref(account).id if account else None
        items = reports.directives(engine.conn, account_id)
        _print(items, args.json, "\n".join(
            f"{d['id']:>5} {d['decided_at'][:16]} {d['account']} {d['serial']:<14} "
            f"{d['action']:<8} {d['delivery']:<6} {d['status']:<17} {cli.pairs(d['args'])}"
            for d in items))
    elif action == "issue":
        if engine.signer is None:
            raise InputError("--signing-key", "", "needed to sign pending directives")
        n = outbox.issue_pending(engine.conn, engine.signer, engine.now, engine.policy.token_ttl,
                                 device_time=args.device_time)
        dated = "the billing clock" if args.device_time is None else f"the handset's time {iso(args.device_time)}"
        _print({"signed": n, "dated_from": iso(engine.now if args.device_time is None else args.device_time)},
               args.json, f"{cli.plural(n, 'directive token')} signed, dated from {dated}")
    elif action == "export":
        from protocol.coretime import EPOCH_UNIX

        out = outbox.export_token(engine.conn, args.id, signer=engine.signer, device_time=args.device_time,
                                  ttl=engine.policy.token_ttl, now=engine.now)
        Path(args.out).write_text(out["token"].hex() + "\n")
        valid = (iso(out["not_before"] + EPOCH_UNIX), iso(out["expires"] + EPOCH_UNIX))
        _print({"id": out["id"], "serial": out["serial"], "action": out["action"], "args": out["args"],
                "path": args.out, "valid_from": valid[0], "valid_until": valid[1]}, args.json,
               f"directive {out['id']} ({out['action']} for {out['serial']}) written to {args.out}; "
               f"valid {valid[0]} .. {valid[1]} by the handset's clock — "
               f"lci-tool token apply {args.out}")
        real = time.time()
        if not args.quiet and args.device_time is None and not (out["not_before"] + EPOCH_UNIX <= real <= out["expires"] + EPOCH_UNIX):
            cli.error("lci-billing", f"note: that window is on the billing clock; a handset on real time "
                      f"({iso(int(real))}) refuses it: export with --device-time now --signing-key KEY")
    elif action == "answer":
        from .signing import load_code_desk
        account = engine.store.account_by_ref(args.ref)
        code = outbox.answer_code(engine.conn, account.id, args.request,
                                    load_code_desk(args.master_secret), engine.now)
        _print({"ref": args.ref, "request": args.request, "code": code}, args.json, code)
    return 0


def _scenario_text(report: dict) -> str:
    out = [f"{report['scenario']}  ({report['start'][:10]} .. {report['until'][:10]}; "
           f"readings: {cli.pairs(report['policy']['readings'])})"]
    # refused events change nothing, so they are not in the timeline: shown at their time
    shown = [e for e in report["events"] if e["result"] != "ok" or not e["as_expected"]]
    for row in report["timeline"]:
        while shown and shown[0]["at"] < row["at"]:
            out.append(_event_line(shown.pop(0)))
        out.append(f"  {row['at'][:16]}  {row['status'] or '-':<16} {fmt(row['balance']):>10}  "
                   + "; ".join(row["events"]))
    out.extend(_event_line(e) for e in shown)
    final = report["final"]
    out.append(f"final: {final['status']}, balance {fmt(final['balance'])}; ledger "
               f"{'balanced' if report['ledger']['balanced'] else 'UNBALANCED'}")
    return "\n".join(out)


def _event_line(e: dict) -> str:
    if e["result"] == "ok":
        return f"  {e['at'][:16]}  NOT REFUSED {e['do']} (expected a refusal)"
    return (f"  {e['at'][:16]}  REFUSED {e['do']}: {e['error']}"
            + (" (expected)" if e["as_expected"] else ""))


if __name__ == "__main__":
    sys.exit(main())
