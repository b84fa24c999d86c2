"""Compliance: the recall causes, the compliance machine's guards and its entry actions.

A recall cause is a bit of STATUS.causes (protocol.messages.CAUSES order, masks in
firmware/lifts.py). add_cause records one and starts a recall; clear_causes lifts some and,
when none is left, returns the unit to normal. GUARDS maps each compliance guard of the
transition table to its condition; `_enter_<state>` is run when the machine enters that
state (dispatched by name from firmware/device.py), then `after_change` for what every
change of compliance does. Functions take the Device.
"""

from firmware import eventlog as ev
from firmware.lifts import CALIBRATION_DUE, LOG_FULL, SERVICE_DUE, TAMPER, UNPAID, VIOLATIONS
from firmware.transitions_table import INSTALLED, LOCKED, SERVICE, STARTS
from firmware.unload import drop
from protocol import messages

CLEARED_BY_SERVICE = SERVICE_DUE | CALIBRATION_DUE | VIOLATIONS | TAMPER | LOG_FULL


def cause_name(bit):
    i = 0
    while bit > 1:
        bit >>= 1
        i += 1
    return messages.CAUSES[i]


def cause_names(mask):
    out = []
    bit = 1
    while bit <= mask:
        if mask & bit:
            out.append(cause_name(bit))
        bit <<= 1
    return ",".join(out)


def add_cause(d, bit, detail=""):
    """Record a recall cause; a new cause starts a recall (or a new one after a for-good
    unlock). Its deadline never moves later. A unit not installed records none."""
    if d.causes & bit or not d.compliance.flags() & INSTALLED:
        return
    if bit == TAMPER and not d.config.tamper_recall:
        return
    d.causes |= bit
    d._dirty = True
    d._log(ev.CAUSE_SET, value=bit, detail=cause_name(bit) + (" " + detail if detail else ""))
    d.compliance.fire("recall", cause_name(bit))


def clear_causes(d, mask, why):
    cleared = d.causes & mask
    if not cleared:
        return
    d.causes &= ~mask
    d._dirty = True
    if cleared & UNPAID:
        d.codes.pending = None  # a clear ends every pending code request
    d._log(ev.CAUSE_CLEAR, value=cleared, detail=why)
    if not d.causes:
        d.recall_deadline = None
        d.compliance.fire("clear")


# ---- guards ---------------------------------------------------------------------------
def _for_good(d):
    """The code_unlock has no end (an unlock token for good)."""
    return d.unlock_until is None


def _causes_left(d):
    return d.causes != 0


def _recall_expired(d):
    """Causes remain and their recall deadline has passed."""
    return d.causes != 0 and d.recall_deadline is not None and d.tb.left(d.recall_deadline) == 0


GUARDS = {"for_good": _for_good, "causes_left": _causes_left, "recall_expired": _recall_expired}


# ---- entry actions ----------------------------------------------------------------------
def _enter_early_service_recall(d, old):
    if d.recall_deadline is None:
        d.recall_deadline = d.tb.after(d.config.recall_s)


def _enter_normal(d, old):
    d.recall_deadline = None
    d.unlock_until = None


def _enter_removed(d, old):
    if not d.causes:
        d.recall_deadline = None
    d.unlock_until = None  # a removed unit keeps its causes and their deadline


def _enter_lockout(d, old):
    d.unlock_until = None


def after_change(d, old):
    """What every compliance change does, after the new state's entry action."""
    machine = d.compliance
    was = machine.flags(old)
    now = machine.flags()
    if was & LOCKED and not now & LOCKED:
        d.codes.pending = None  # a request code lives only as long as its lockout
    if was & SERVICE:
        d.cal = None
        d.cal_sample = None
        drop("firmware.calibration")  # if a calibration was left unfinished
    if not now & STARTS:
        d.session.fire("blocked")  # a start test pending is ended (a row only from it)
