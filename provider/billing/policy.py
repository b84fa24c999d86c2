"""The billing policy: reads a TOML policy file, checks every field, and exposes it as a frozen object.

The default file (default_policy.toml beside this module) reproduces the provider's terms and conditions. Overrides (from a
scenario's [policy] table) are dotted field names, e.g. {"late_fee.reading": "second_failed_attempt"}.
Every problem is an InputError naming the file, the field and what is wrong.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from protocol.coretime import DAY, HOUR, WEEK  # noqa: F401 (the policy's units)
from protocol.tokens import DIRECTIVE_CAUSES

from .errors import InputError
from .money import parse_percent

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.toml")


CYCLE_ITEMS = ("rental", "theft_protection", "admin_fee")
FEE_ITEMS = ("late_fee", "reschedule_fee", "removal_fee")
ALL_ITEMS = CYCLE_ITEMS + FEE_ITEMS
LATE_FEE_READINGS = ("uncorrected", "second_failed_attempt")
COLLECTION_READINGS = ("recall_then_lockout", "lockout")
REST_OF_MONTH = ("first_cycle", "every_month")
CHANGE_FIELDS = ("payment_method", "theft_protection", "cycle_weeks")
DEFAULT_MAX_PAYMENT = 2_500_000  # $25,000.00, for policies written before [payments] existed
# the largest maximum a policy may set: with it, no ledger sum comes near 2**63 cents
MAX_PAYMENT_CEILING = 100_000_000_000


@dataclass(frozen=True)
class Item:
    key: str
    label: str
    prices: dict  # cycle weeks -> cents
    optional: bool = False


@dataclass(frozen=True)
class Policy:
    source: str
    name: str
    text: str  # the TOML text it was read from (stored with the database)
    overrides: dict
    cycle_weeks: tuple
    standard_weeks: int
    items: dict  # key -> Item (cycle items)
    admin_fee_automated_only: bool
    late_fee: int
    reschedule_fee: int
    removal_fee: int
    taxable_items: frozenset
    tax_rates: dict  # state -> (state rate, {county: rate})
    second_charge_after: int  # seconds
    manual_due: int  # seconds
    notice_before_attempt: int  # seconds
    retry_after: tuple  # seconds after a failure
    late_fee_reading: str
    late_fee_after: int  # seconds (uncorrected reading)
    late_fee_second_attempt_after: int  # seconds (second_failed_attempt reading)
    switch_failed_payments: int
    switch_window: int  # seconds
    switch_to_weeks: tuple
    collections_reading: str
    recall_after: int
    lockout_after_recall: int
    lockout_after: int
    directive_cause: str
    clear_code_on_full_payment: bool
    change_notice: int  # seconds
    change_fields: frozenset
    method_immediate_when_failing: bool
    month: int  # seconds in a billing month (4 weeks)
    bill_rest_of_month: str
    rest_of_month_items: tuple
    refund_advance_minimum: int  # seconds
    refundable_items: frozenset
    cancelled_kept: int  # seconds of rental kept on a cancelled installation
    reschedule_fee_notice: int
    short_notice: int
    short_notice_per_cycle: int
    token_ttl: int  # seconds a directive token stays valid
    max_payment: int = DEFAULT_MAX_PAYMENT  # cents: the largest single payment or refund

    def price(self, item: str, weeks: int) -> int:
        return self.items[item].prices[weeks]

    def tax_rate(self, state: str, county: str) -> Fraction:
        """Combined state + county rate; KeyError if the state has no rate."""
        state_rate, counties = self.tax_rates[state]
        return state_rate + counties.get(county, Fraction(0))

    @property
    def readings(self) -> dict:
        return {
            "late_fee": self.late_fee_reading,
            "collections": self.collections_reading,
            "bill_rest_of_month": self.bill_rest_of_month,
        }


class _Reader:
    """Typed access to a parsed TOML document that reports errors as file: field: problem."""

    def __init__(self, source: str, data: dict):
        self.source = source
        self.data = data

    def fail(self, field: str, problem: str):
        raise InputError(self.source, field, problem)

    def get(self, field: str):
        node = self.data
        for part in field.split("."):
            if not isinstance(node, dict) or part not in node:
                self.fail(field, "missing")
            node = node[part]
        return node

    def table(self, field: str, known: tuple | None = None) -> dict:
        value = self.get(field)
        if not isinstance(value, dict):
            self.fail(field, f"expected a table, got {_kind(value)}")
        if known is not None:
            for key in value:
                if key not in known:
                    self.fail(f"{field}.{key}", f"unknown field (known: {', '.join(known)})")
        return value

    def integer(self, field: str, low: int = 0, high: int | None = None) -> int:
        value = self.get(field)
        if isinstance(value, bool) or not isinstance(value, int):
            hint = " (money is integer cents: 54.12 is written 5412)" if isinstance(value, float) else ""
            self.fail(field, f"expected an integer, got {_kind(value)} {value!r}{hint}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            self.fail(field, f"{value} is out of range (must be {bound})")
        return value

    def boolean(self, field: str) -> bool:
        value = self.get(field)
        if not isinstance(value, bool):
            self.fail(field, f"expected true or false, got {_kind(value)} {value!r}")
        return value

    def text(self, field: str, choices: tuple | None = None) -> str:
        value = self.get(field)
        if not isinstance(value, str) or not value:
            self.fail(field, f"expected a non-empty string, got {_kind(value)} {value!r}")
        if choices is not None and value not in choices:
            self.fail(field, f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def int_list(self, field: str, low: int = 0) -> tuple:
        value = self.get(field)
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            self.fail(field, f"expected a list of integers, got {value!r}")
        for v in value:
            if v < low:
                self.fail(field, f"{v} is out of range (must be >= {low})")
        return tuple(value)

    def str_list(self, field: str, choices: tuple) -> tuple:
        value = self.get(field)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(field, f"expected a list of strings, got {value!r}")
        for v in value:
            if v not in choices:
                self.fail(field, f"{v!r} is not one of: {', '.join(choices)}")
        return tuple(value)

    def percent(self, field: str) -> Fraction:
        value = self.get(field)
        try:
            return parse_percent(value)
        except ValueError as exc:
            self.fail(field, str(exc))


def _kind(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


TOP_LEVEL = ("policy", "cycles", "items", "fees", "tax", "schedule", "retries", "late_fee",
             "cycle_switch", "collections", "account_changes", "returns", "refunds", "rescheduling",
             "directives", "payments")


def parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(source, "", f"not valid TOML: {exc}") from None


def apply_overrides(data: dict, overrides: dict, source: str) -> dict:
    """Return a copy of `data` with dotted-name overrides applied; each must name an existing field."""
    merged = copy.deepcopy(data)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = merged
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise InputError(source, f"policy.{dotted}", "no such policy field")
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise InputError(source, f"policy.{dotted}", "no such policy field")
        node[parts[-1]] = value
    return merged


def load_policy(path: str | Path | None = None, overrides: dict | None = None,
                overrides_source: str = "overrides") -> Policy:
    """Read and check a policy file (the default file when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), "", f"cannot read policy: {exc.strerror}") from None
    return policy_from_text(text, str(path), overrides or {}, overrides_source)


def policy_from_text(text: str, source: str, overrides: dict | None = None,
                     overrides_source: str = "overrides") -> Policy:
    data = parse_toml(text, source)
    overrides = dict(overrides or {})
    if overrides:
        data = apply_overrides(data, overrides, overrides_source)
    try:
        return _check(_Reader(source, data), text, overrides)
    except InputError as exc:
        # a bad value that came from an override is the override's fault: name where it was written
        if any(exc.field == k or exc.field.startswith(k + ".") for k in overrides):
            raise InputError(overrides_source, f"policy.{exc.field}", exc.problem) from None
        raise


def _check(r: _Reader, text: str, overrides: dict) -> Policy:
    for key in r.data:
        if key not in TOP_LEVEL:
            r.fail(key, f"unknown section (known: {', '.join(TOP_LEVEL)})")
    r.table("policy", ("name", "currency"))
    name = r.text("policy.name")
    if r.text("policy.currency") != "USD":
        r.fail("policy.currency", "only USD is supported")

    r.table("cycles", ("weeks", "standard_weeks"))
    weeks = r.int_list("cycles.weeks", low=1)
    if not weeks or len(set(weeks)) != len(weeks):
        r.fail("cycles.weeks", "expected distinct cycle lengths in weeks")
    standard = r.integer("cycles.standard_weeks", low=1)
    if standard not in weeks:
        r.fail("cycles.standard_weeks", f"{standard} is not one of cycles.weeks {list(weeks)}")

    r.table("items", CYCLE_ITEMS)
    items = {}
    for key in CYCLE_ITEMS:
        known = ("label", "prices", "optional", "automated_tokened_only")
        r.table(f"items.{key}", known)
        prices_table = r.table(f"items.{key}.prices")
        prices = {}
        for w in weeks:
            if str(w) not in prices_table:
                r.fail(f"items.{key}.prices", f"no price for the {w}-week cycle")
            prices[w] = r.integer(f"items.{key}.prices.{w}")
        for k in prices_table:
            if not k.isdigit() or int(k) not in weeks:
                r.fail(f"items.{key}.prices.{k}", f"not a cycle length in cycles.weeks {list(weeks)}")
        optional = r.boolean(f"items.{key}.optional") if "optional" in r.get(f"items.{key}") else False
        items[key] = Item(key, r.text(f"items.{key}.label"), prices, optional)
    admin_only = True
    if "automated_tokened_only" in r.get("items.admin_fee"):
        admin_only = r.boolean("items.admin_fee.automated_tokened_only")

    r.table("fees", ("late_fee", "reschedule_fee", "removal_fee"))
    r.table("tax", ("taxable_items", "rounding", "rates"))
    taxable = frozenset(r.str_list("tax.taxable_items", ALL_ITEMS))
    r.text("tax.rounding", ("half_up",))
    rates = {}
    for state, entry in r.table("tax.rates").items():
        field = f"tax.rates.{state}"
        if len(state) != 2 or not state.isalpha() or not state.isupper():
            r.fail(field, "a state is a two-letter upper-case code")
        r.table(field, ("state", "counties"))
        counties = {}
        if "counties" in entry:
            for county in r.table(f"{field}.counties"):
                counties[county] = r.percent(f"{field}.counties.{county}")
        rates[state] = (r.percent(f"{field}.state"), counties)

    r.table("schedule", ("second_charge_after_days", "manual_due_days"))
    r.table("retries", ("notice_hours", "after_hours"))
    notice = r.integer("retries.notice_hours", low=0) * HOUR
    retry_after = tuple(h * HOUR for h in r.int_list("retries.after_hours", low=1))
    previous = 0
    for offset in retry_after:
        if offset - previous < notice:
            r.fail("retries.after_hours",
                   f"a retry {offset // HOUR} h after the failure leaves less than the "
                   f"{notice // HOUR} h notice after the previous attempt")
        previous = offset

    r.table("late_fee", ("reading", "after_hours", "second_attempt_after_hours"))
    r.table("cycle_switch", ("failed_payments", "window_weeks", "to_weeks"))
    switch_to = r.int_list("cycle_switch.to_weeks", low=1)
    for w in switch_to:
        if w not in weeks:
            r.fail("cycle_switch.to_weeks", f"{w} is not one of cycles.weeks {list(weeks)}")
    r.table("collections", ("reading", "recall_after_days", "lockout_after_recall_days",
                            "lockout_after_days", "cause", "clear_code_on_full_payment"))
    r.table("account_changes", ("notice_days", "applies_to", "payment_method_immediate_when_failing"))
    r.table("returns", ("month_weeks", "bill_rest_of_month", "rest_of_month_items"))
    r.table("refunds", ("advance_minimum_weeks", "refundable_items", "cancelled_installation_kept_days"))
    r.table("rescheduling", ("fee_notice_hours", "short_notice_hours", "short_notice_per_cycle"))
    r.table("directives", ("token_ttl_days",))
    if "payments" in r.data:
        r.table("payments", ("max_payment",))
    rest_items = r.str_list("returns.rest_of_month_items", CYCLE_ITEMS)
    if "admin_fee" in rest_items:
        r.fail("returns.rest_of_month_items", "the administrative fee belongs to automated cycle charges")
    fee_notice = r.integer("rescheduling.fee_notice_hours", low=0) * HOUR
    short_notice = r.integer("rescheduling.short_notice_hours", low=0) * HOUR
    if short_notice > fee_notice:
        r.fail("rescheduling.short_notice_hours", "must not exceed rescheduling.fee_notice_hours")

    return Policy(
        source=r.source,
        name=name,
        text=text,
        overrides=overrides,
        cycle_weeks=weeks,
        standard_weeks=standard,
        items=items,
        admin_fee_automated_only=admin_only,
        late_fee=r.integer("fees.late_fee"),
        reschedule_fee=r.integer("fees.reschedule_fee"),
        removal_fee=r.integer("fees.removal_fee"),
        taxable_items=taxable,
        tax_rates=rates,
        second_charge_after=r.integer("schedule.second_charge_after_days", low=1) * DAY,
        manual_due=r.integer("schedule.manual_due_days", low=0) * DAY,
        notice_before_attempt=notice,
        retry_after=retry_after,
        late_fee_reading=r.text("late_fee.reading", LATE_FEE_READINGS),
        late_fee_after=r.integer("late_fee.after_hours", low=0) * HOUR,
        late_fee_second_attempt_after=r.integer("late_fee.second_attempt_after_hours", low=0) * HOUR,
        switch_failed_payments=r.integer("cycle_switch.failed_payments", low=1),
        switch_window=r.integer("cycle_switch.window_weeks", low=1) * WEEK,
        switch_to_weeks=switch_to,
        collections_reading=r.text("collections.reading", COLLECTION_READINGS),
        recall_after=r.integer("collections.recall_after_days", low=0) * DAY,
        lockout_after_recall=r.integer("collections.lockout_after_recall_days", low=0) * DAY,
        lockout_after=r.integer("collections.lockout_after_days", low=0) * DAY,
        directive_cause=r.text("collections.cause", DIRECTIVE_CAUSES),
        clear_code_on_full_payment=r.boolean("collections.clear_code_on_full_payment"),
        change_notice=r.integer("account_changes.notice_days", low=0) * DAY,
        change_fields=frozenset(r.str_list("account_changes.applies_to", CHANGE_FIELDS)),
        method_immediate_when_failing=r.boolean("account_changes.payment_method_immediate_when_failing"),
        month=r.integer("returns.month_weeks", low=1) * WEEK,
        bill_rest_of_month=r.text("returns.bill_rest_of_month", REST_OF_MONTH),
        rest_of_month_items=rest_items,
        refund_advance_minimum=r.integer("refunds.advance_minimum_weeks", low=1) * WEEK,
        refundable_items=frozenset(r.str_list("refunds.refundable_items", CYCLE_ITEMS)),
        cancelled_kept=r.integer("refunds.cancelled_installation_kept_days", low=0) * DAY,
        reschedule_fee_notice=fee_notice,
        short_notice=short_notice,
        short_notice_per_cycle=r.integer("rescheduling.short_notice_per_cycle", low=0),
        token_ttl=r.integer("directives.token_ttl_days", low=1) * DAY,
        max_payment=(r.integer("payments.max_payment", low=1, high=MAX_PAYMENT_CEILING)
                     if "payments" in r.data else DEFAULT_MAX_PAYMENT),
    )
