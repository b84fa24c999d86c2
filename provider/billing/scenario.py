"""Billing scenarios: one account, its options and dated events, run on a fresh in-memory database
under the virtual clock, reported as JSON (format in docs/billing.md).

    [scenario]   name, start (acceptance), until (end, optional), seed, failure_rate, policy (file)
    [policy]     dotted overrides of the policy, e.g. "late_fee.reading" = "second_failed_attempt"
    [account]    serial, email, state, county, payment_method, theft_protection, appointment,
                 pay_initial
    [[event]]    at + do = card | pay | payment_method | theft_protection | set_cycle | reschedule |
                 install | cancel_installation | remove | prepay | close | advance (+ its fields),
                 and optionally expect = "ok" (default) | "refused"

Events run in time order (file order for equal times), each after everything due up to its
time has run. A malformed file gets an InputError naming the file, the field and the problem.
An event the rules refuse is reported, not fatal; the report lists in `unexpected` the events
whose result differs from their `expect` (a scenario may show a refusal on purpose).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from . import reports, schema
from .clock import from_toml, iso
from .engine import Engine
from .errors import BillingError, InputError
from .policy import load_policy
from .simulated_processor import BEHAVIOURS, SimulatedProcessor

EVENT_FIELDS = {
    "card": {"behaviour": "str", "token": "str?"},
    "pay": {"amount": "int?", "token": "str?", "key": "str?", "external": "bool?"},
    "payment_method": {"token": "str"},
    "theft_protection": {"on": "bool"},
    "set_cycle": {"weeks": "int"},
    "reschedule": {"to": "time"},
    "install": {},
    "cancel_installation": {},
    "remove": {},
    "prepay": {"cycles": "int", "token": "str?"},
    "close": {},
    "advance": {},
}
EXPECT = ("ok", "refused")
SCENARIO_FIELDS = ("name", "start", "until", "seed", "failure_rate", "policy")
ACCOUNT_FIELDS = ("serial", "email", "state", "county", "payment_method", "theft_protection",
                  "appointment", "pay_initial")


class Scenario:
    def __init__(self, path: Path, data: dict):
        self.path = path
        self.source = str(path)
        self.data = data

    def fail(self, field, problem):
        raise InputError(self.source, field, problem)


def load(path: str | Path) -> tuple[Scenario, dict]:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(str(path), "", f"cannot read scenario: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), "", f"not valid TOML: {exc}") from None
    s = Scenario(path, data)
    return s, _check(s)


def _time(s: Scenario, field: str, value) -> int:
    try:
        return from_toml(value)
    except ValueError as exc:
        s.fail(field, str(exc))


def _typed(s: Scenario, field: str, value, kind: str):
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        if optional:
            return None
        s.fail(field, "missing")
    if kind == "str":
        if not isinstance(value, str) or not value:
            s.fail(field, f"expected a non-empty string, got {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            hint = " (money is integer cents)" if isinstance(value, float) else ""
            s.fail(field, f"expected an integer, got {value!r}{hint}")
    elif kind == "bool":
        if not isinstance(value, bool):
            s.fail(field, f"expected true or false, got {value!r}")
    elif kind == "time":
        return _time(s, field, value)
    return value


def _check(s: Scenario) -> dict:
    d = s.data
    for key in d:
        if key not in ("scenario", "policy", "account", "event"):
            s.fail(key, "unknown section (known: scenario, policy, account, event)")
    head = d.get("scenario")
    if not isinstance(head, dict):
        s.fail("scenario", "missing [scenario] table")
    for key in head:
        if key not in SCENARIO_FIELDS:
            s.fail(f"scenario.{key}", f"unknown field (known: {', '.join(SCENARIO_FIELDS)})")
    name = _typed(s, "scenario.name", head.get("name"), "str")
    start = _time(s, "scenario.start", head["start"]) if "start" in head else \
        s.fail("scenario.start", "missing")
    until = _time(s, "scenario.until", head["until"]) if "until" in head else None
    seed = _typed(s, "scenario.seed", head.get("seed", 0), "int")
    rate = head.get("failure_rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        s.fail("scenario.failure_rate", f"expected a number from 0 to 1, got {rate!r}")
    policy_file = None
    if "policy" in head:
        policy_file = s.path.parent / _typed(s, "scenario.policy", head["policy"], "str")
    overrides = d.get("policy", {})
    if not isinstance(overrides, dict):
        s.fail("policy", "expected a table of dotted policy fields")
    overrides = _flatten(overrides)

    acc = d.get("account")
    if not isinstance(acc, dict):
        s.fail("account", "missing [account] table")
    for key in acc:
        if key not in ACCOUNT_FIELDS:
            s.fail(f"account.{key}", f"unknown field (known: {', '.join(ACCOUNT_FIELDS)})")
    account = {
        "serial": _typed(s, "account.serial", acc.get("serial"), "str"),
        "email": _typed(s, "account.email", acc.get("email"), "str"),
        "state": _typed(s, "account.state", acc.get("state"), "str"),
        "county": _typed(s, "account.county", acc.get("county"), "str?") or "",
        "token": _typed(s, "account.payment_method", acc.get("payment_method"), "str?"),
        "theft_protection": _typed(s, "account.theft_protection",
                                   acc.get("theft_protection", False), "bool"),
        "appointment": _typed(s, "account.appointment", acc.get("appointment"), "time?")
        if acc.get("appointment") is not None else None,
        "pay_initial": _typed(s, "account.pay_initial", acc.get("pay_initial", True), "bool"),
    }

    events = d.get("event", [])
    if not isinstance(events, list):
        s.fail("event", "expected [[event]] entries")
    checked = []
    for n, ev in enumerate(events):
        where = f"event[{n}]"
        if not isinstance(ev, dict):
            s.fail(where, "expected a table")
        do = ev.get("do")
        if do not in EVENT_FIELDS:
            s.fail(f"{where}.do", f"{do!r} is not one of: {', '.join(EVENT_FIELDS)}")
        if "at" not in ev:
            s.fail(f"{where}.at", "missing")
        at = _time(s, f"{where}.at", ev["at"])
        if at < start:
            s.fail(f"{where}.at", "before scenario.start")
        spec = EVENT_FIELDS[do]
        expect = ev.get("expect", "ok")
        if expect not in EXPECT:
            s.fail(f"{where}.expect", f'expected "ok" or "refused", got {expect!r}')
        for key in ev:
            if key not in ("at", "do", "expect") and key not in spec:
                s.fail(f"{where}.{key}", f"not a field of a {do!r} event (fields: "
                       f"{', '.join(spec) or 'none'})")
        fields = {key: _typed(s, f"{where}.{key}", ev.get(key), kind) for key, kind in spec.items()}
        if do == "card" and fields["behaviour"] not in BEHAVIOURS:
            s.fail(f"{where}.behaviour", f"{fields['behaviour']!r} is not one of: "
                   f"{', '.join(BEHAVIOURS)}")
        checked.append({"n": n, "at": at, "do": do, "fields": fields, "expect": expect})
    checked.sort(key=lambda e: (e["at"], e["n"]))
    if until is None:
        until = max([start] + [e["at"] for e in checked])
    if until < start:
        s.fail("scenario.until", "before scenario.start")
    return {"name": name, "start": start, "until": until, "seed": seed, "failure_rate": rate,
            "policy_file": policy_file, "overrides": overrides, "account": account,
            "events": checked}


def _flatten(table: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def run(path: str | Path, signer=None) -> dict:
    s, spec = load(path)
    policy = load_policy(spec["policy_file"], spec["overrides"], overrides_source=s.source)
    conn = schema.connect(":memory:")
    schema.create(conn)
    Engine.initialize(conn, policy, spec["start"], spec["seed"])
    processor = SimulatedProcessor(seed=spec["seed"], failure_rate=spec["failure_rate"])
    engine = Engine(conn, policy, processor, signer=signer)
    acc = spec["account"]
    try:
        ref = engine.open_account(serial=acc["serial"], email=acc["email"], state=acc["state"],
                                  county=acc["county"], token=acc["token"],
                                  theft_protection=acc["theft_protection"],
                                  appointment=acc["appointment"], pay_initial=acc["pay_initial"],
                                  source=f"{s.source}: account")
    except InputError as exc:
        raise InputError(s.source, f"account.{exc.field}", exc.problem) from None
    outcomes = []
    for ev in spec["events"]:
        engine.advance(ev["at"])
        outcome = _apply(engine, processor, ref, ev)
        outcomes.append({"event": ev["n"], "at": iso(ev["at"]), "do": ev["do"], **outcome,
                         "expect": ev["expect"],
                         "as_expected": outcome["result"] == ev["expect"]})
    engine.advance(spec["until"])
    return _report(conn, engine, s, spec, ref, outcomes, processor)


def _apply(engine: Engine, processor, ref: str, ev: dict) -> dict:
    f = ev["fields"]
    do = ev["do"]
    try:
        if do == "card":
            token = f["token"] or engine.store.account_by_ref(ref).method_token
            if token is None:
                return {"result": "refused", "error": "no payment method to change"}
            processor.set_card(token, ev["at"], f["behaviour"])
            return {"result": "ok", "token": token, "behaviour": f["behaviour"]}
        if do == "pay":
            return {"result": "ok", **engine.pay(ref, amount=f["amount"], key=f["key"],
                                                 token=f["token"], external=bool(f["external"]))}
        if do == "payment_method":
            return {"result": "ok", **_times(engine.set_payment_method(ref, f["token"]))}
        if do == "theft_protection":
            return {"result": "ok", **_times(engine.set_theft_protection(ref, f["on"]))}
        if do == "set_cycle":
            return {"result": "ok", **_times(engine.set_cycle(ref, f["weeks"]))}
        if do == "reschedule":
            return {"result": "ok", **engine.reschedule(ref, f["to"])}
        if do == "install":
            engine.install(ref)
        elif do == "cancel_installation":
            return {"result": "ok", **engine.cancel_installation(ref)}
        elif do == "remove":
            return {"result": "ok", **engine.remove_device(ref)}
        elif do == "prepay":
            out = engine.prepay(ref, f["cycles"], token=f["token"])
            if "paid_through" in out:
                out["paid_through"] = iso(out["paid_through"])
            return {"result": "ok", **out}
        elif do == "close":
            engine.close(ref)
        return {"result": "ok"}
    except BillingError as exc:
        if isinstance(exc, InputError):
            raise InputError(exc.source, f"event[{ev['n']}].{exc.field}", exc.problem) from None
        return {"result": "refused", "error": str(exc)}


def _times(outcome: dict) -> dict:
    if isinstance(outcome.get("effective"), int):
        outcome = dict(outcome, effective=iso(outcome["effective"]))
    return outcome


def _report(conn, engine, s, spec, ref, outcomes, processor) -> dict:
    account = engine.store.account_by_ref(ref)
    invoice_list = reports.invoices(conn, account.id)
    payment_list = reports.payments(conn, account.id)
    return {
        "scenario": spec["name"],
        "file": s.source,
        "policy": {"name": engine.policy.name, "readings": engine.policy.readings,
                   "overrides": spec["overrides"]},
        "start": iso(spec["start"]),
        "until": iso(spec["until"]),
        "events": outcomes,
        "unexpected": [e["event"] for e in outcomes if not e["as_expected"]],
        "invoices": invoice_list,
        "payments": [p for p in payment_list if p["kind"] != "refund"],
        "fees": [i for i in invoice_list if i["kind"] in ("late_fee", "reschedule_fee",
                                                          "removal_fee")],
        "taxes": [{"invoice": i["number"], "rate": i["tax_rate"],
                   "taxable": sum(ln["amount"] for ln in i["lines"] if ln["taxable"]),
                   "tax": i["tax"]} for i in invoice_list],
        "refunds": {"credit_notes": [i for i in invoice_list if i["kind"] == "credit_note"],
                    "paid_out": [p for p in payment_list if p["kind"] == "refund"]},
        "notices": reports.notices(conn, account.id),
        "directives": reports.directives(conn, account.id),
        "timeline": reports.timeline(conn, account.id),
        "final": reports.account_view(conn, ref),
        "ledger": reports.check_ledger(conn),
        "processor_net_captured": processor.captured_total(),
    }
