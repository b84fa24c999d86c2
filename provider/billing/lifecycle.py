"""The account life cycle: a `transitions` state machine, the single authority on account states.

States
    awaiting_payment  terms accepted, the initial invoice is not yet paid, and either the device
                      is not installed yet or the invoice is not yet due
    active            in good standing
    past_due          an automated payment failed, a manual invoice went unpaid, or the initial
                      invoice of an installed device was unpaid at its due date; the balance is
                      not yet paid in full
    recall            early service recall issued for the unpaid balance
    lockout           lockout issued for the unpaid balance
    returned          the device was removed: billing has ended (a final balance or refund may remain)
    cancelled         the installation was cancelled before it happened
    closed            returned or cancelled, and settled to the cent

The engine keeps one `Lifecycle` and asks it `fire(state, trigger, balance=..., installed=...)`;
an illegal trigger raises RuleError. Conditions read the context passed with the trigger, so the
generated diagram shows each guard as `[condition]`.
"""

from __future__ import annotations

from transitions import Machine, MachineError

from .errors import RuleError
from .money import fmt

STATES = ["awaiting_payment", "active", "past_due", "recall", "lockout", "returned", "cancelled",
          "closed"]
LIVE = ("awaiting_payment", "active", "past_due", "recall", "lockout")
COLLECTING = ("past_due", "recall", "lockout")
DEVICE_DIRECTED = ("recall", "lockout")
LIVE_CLOSE_HINT = " (remove the device or cancel the installation first)"

TRANSITIONS = [
    {"trigger": "initial_payment_received", "source": "awaiting_payment", "dest": "active",
     "conditions": "paid_in_full"},
    {"trigger": "initial_payment_overdue", "source": "awaiting_payment", "dest": "past_due",
     "conditions": "installed"},
    {"trigger": "fall_past_due", "source": "active", "dest": "past_due"},
    {"trigger": "recall_for_balance", "source": "past_due", "dest": "recall"},
    {"trigger": "lock_out_for_balance", "source": ["past_due", "recall"], "dest": "lockout"},
    {"trigger": "balance_paid", "source": ["past_due", "recall", "lockout"], "dest": "active",
     "conditions": "paid_in_full"},
    {"trigger": "remove_device",
     "source": ["awaiting_payment", "active", "past_due", "recall", "lockout"],
     "dest": "returned", "conditions": "installed"},
    {"trigger": "cancel_installation", "source": ["awaiting_payment", "active", "past_due"],
     "dest": "cancelled", "unless": "installed"},
    {"trigger": "close", "source": ["returned", "cancelled"], "dest": "closed",
     "conditions": "settled"},
]


class Lifecycle:
    """One reusable model: `fire` sets the state, runs the trigger, returns the new state."""

    def __init__(self):
        self._balance = 0
        self._installed = False
        self.machine = Machine(model=self, states=STATES, transitions=TRANSITIONS,
                               initial="awaiting_payment", auto_transitions=False,
                               ignore_invalid_triggers=False)
        self._table = {(t["trigger"], s): t["dest"] for t in TRANSITIONS
                       for s in ([t["source"]] if isinstance(t["source"], str) else t["source"])}
        # the machine's answers, remembered: the conditions read only the balance's sign and
        # `installed`, so (state, trigger, sign, installed) decides the move (daily runs fire the
        # same few moves for thousands of accounts)
        self._moves: dict[tuple, str] = {}

    # conditions (named in TRANSITIONS, drawn in the diagram)
    def paid_in_full(self) -> bool:
        return self._balance <= 0

    def settled(self) -> bool:
        return self._balance == 0

    def installed(self) -> bool:
        return self._installed

    def can(self, state: str, trigger: str) -> bool:
        """True if `trigger` leaves `state` (ignoring conditions)."""
        return (trigger, state) in self._table

    def fire(self, state: str, trigger: str, balance: int = 0, installed: bool = False) -> str:
        key = (state, trigger, (balance > 0) - (balance < 0), bool(installed))
        found = self._moves.get(key)
        if found is None:
            found = self._moves[key] = self._fire(state, trigger, balance, installed)
        return found

    def _fire(self, state: str, trigger: str, balance: int, installed: bool) -> str:
        self.machine.set_state(state, model=self)
        self._balance = balance
        self._installed = installed
        try:
            moved = self.trigger(trigger)
        except MachineError:
            hint = LIVE_CLOSE_HINT if trigger == "close" and state in LIVE else ""
            raise RuleError(f"cannot {trigger.replace('_', ' ')} an account that is {state}{hint}"
                            ) from None
        if not moved:
            reason = {"paid_in_full": "the balance is not paid in full",
                      "settled": f"the balance is not settled ({fmt(balance)})",
                      "installed": "the device is not installed",
                      }.get(_guard(trigger), "a condition is not met")
            if trigger == "cancel_installation":
                reason = "the device is already installed"
            raise RuleError(f"cannot {trigger.replace('_', ' ')} ({reason})")
        return self.state


def _guard(trigger: str) -> str | None:
    for t in TRANSITIONS:
        if t["trigger"] == trigger:
            return t.get("conditions")
    return None


def mermaid() -> str:
    """The machine as a mermaid stateDiagram-v2, drawn by transitions' own mermaid engine."""
    from transitions.extensions import GraphMachine

    class _Model:
        def paid_in_full(self):
            return True

        def settled(self):
            return True

        def installed(self):
            return False

    model = _Model()
    machine = GraphMachine(model=model, states=STATES, transitions=TRANSITIONS,
                           initial="awaiting_payment", auto_transitions=False,
                           graph_engine="mermaid", show_conditions=True,
                           title="LCI-777 billing account")
    model.get_graph()
    machine.model_graphs[id(model)].reset_styling()  # a diagram of the machine, not of one account
    text = model.get_graph().draw(None)
    # mermaid front matter is YAML: give the title its key so renderers accept it
    return text.replace("---\nLCI-777 billing account\n---", "---\ntitle: LCI-777 billing account\n---", 1)


def diagram_markdown() -> str:
    """The whole docs/diagrams/account.md text (generated; see `python -m provider.billing.diagram`)."""
    lines = [
        "# Billing account life cycle",
        "",
        "<!-- GENERATED by `python -m provider.billing.diagram` from provider/billing/lifecycle.py;",
        "     do not edit by hand: tests/host/test_diagrams.py fails when this file is stale. -->",
        "",
        "States and guarded transitions of a billing account (`transitions` machine, mermaid engine).",
        "Guards are shown in brackets; `unless` guards are shown as `[!guard]`.",
        "",
        "```mermaid",
        mermaid().rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)
