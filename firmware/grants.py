"""Signed tokens on the device: what each action does, and the replay records.

apply(d, grant) applies a verified token's grant (`_grant_<action>`, dispatched by name);
Device.apply_token has the Authority verify the token first, then imports this module to
apply it, all or nothing, and drops it again (firmware/unload.py). Replay records: the ids of
tokens applied and their expiries, and a floor. A token whose id is recorded, or whose
expiry is at or below the floor, is a replay. A record leaves only by raising the floor to
its expiry (when it has expired, or to make room), so a dropped record can never be
replayed, not even with the clock set back. Session-bound tokens are also kept for their
USB session's life (the floor does not cover them). Functions take the Device.
"""

from firmware import eventlog as ev
from firmware.compliance import CLEARED_BY_SERVICE, add_cause, cause_names, clear_causes
from firmware.config import DAY
from firmware.lifts import UNPAID, lifted_by_scope, lifted_by_signer
from firmware.transitions_table import LOCKED, RECALL, SERVICE
from protocol import errors
from protocol.endpoint import Refused

WORK_ORDERS = ("installation", "removal", "exchange", "vehicle_switch", "handset_exchange")


def int_arg(args, name, low, high):
    value = args.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or value > high:
        raise Refused(errors.BAD_ARGUMENT, "%s must be an integer in %d..%d" % (name, low, high))
    return value


def _text_arg(args, name, longest=64):
    value = args.get(name, "")
    if not isinstance(value, str) or len(value) > longest:
        raise Refused(errors.BAD_ARGUMENT, "%s must be text of at most %d characters" % (name, longest))
    return value


def _record_use(d, token_id, expires, session_bound=False):
    """Remember an applied token until the floor passes its expiry; a session-bound one
    also for the rest of its session."""
    if session_bound:
        d.session_ids.append(token_id)
    d.used_ids.append(token_id)
    d.used_expiry.append(expires)
    # expired records stay a while (replay_keep_expired_s) so the floor stays well behind
    # the clock: a clock corrected backwards by less than that still accepts new tokens
    horizon = d.tb.wall() - d.config.replay_keep_expired_s
    keep = d.config.used_tokens_kept
    i = 0
    while i < len(d.used_ids):
        if d.used_expiry[i] < horizon:  # long expired: the floor now covers it
            _drop_use(d, i)
        else:
            i += 1
    while len(d.used_ids) > keep:  # room: drop the one expiring first
        soonest = 0
        for j in range(1, len(d.used_expiry)):
            if d.used_expiry[j] < d.used_expiry[soonest]:
                soonest = j
        _drop_use(d, soonest)


def _drop_use(d, i):
    if d.used_expiry[i] > d.replay_floor:
        d.replay_floor = d.used_expiry[i]
    d.used_ids.pop(i)
    d.used_expiry.pop(i)


def apply(d, grant):
    """Apply a verified token's grant (inside Device._apply); (action, detail)."""
    action = grant.action
    args = grant.args if isinstance(grant.args, dict) else {}
    if action != "work_order" and action != "set_time":
        d.compliance.require("token")
    if "order" in args and action != "work_order":
        raise Refused(errors.WORK_ORDER_REQUIRED, "orders come only in a work_order token")
    apply = globals().get("_grant_" + action)
    if apply is None:
        raise Refused(errors.NOT_SUPPORTED, "action %s" % action)
    # a token bound to this USB session cannot be replayed in another one (its HELLO
    # nonce is gone), so only unbound tokens (directives, work orders) meet the floor:
    # long-lived directives evicted for room never block a technician's session tokens
    bound = getattr(grant, "session_bound", False)
    if not bound and grant.expires <= d.replay_floor:
        raise Refused(errors.REPLAYED, "older than the replay records kept")
    if bound and len(d.session_ids) >= 2 * d.config.used_tokens_kept:
        raise Refused(errors.NOT_PERMITTED, "too many tokens in this session: start a new one")
    d._scopes = getattr(grant, "scopes", None)
    d._scope = getattr(grant, "scope", None)
    detail = apply(d, args)
    _record_use(d, grant.token_id, grant.expires, bound)
    d._log(ev.TOKEN_ACCEPTED, detail="%s %s %s" % (action, grant.key_id, detail))
    return action, detail


def _grant_unlock(d, args):
    seconds = int_arg(args, "seconds", 0, 400 * DAY)
    d.compliance.require("unlock_token")
    if seconds:
        # an override for a window: the causes stay, and it uses the service interval's
        # override allowance like a keypad override
        codes = d.codes
        if codes.used >= d.config.overrides_per_service:
            raise Refused(errors.OVERRIDE_LIMIT, "%d per service interval" % d.config.overrides_per_service)
        codes.used += 1
    else:
        # for good: it ends the lockout of every cause in force, so the signer's scopes
        # must lift each of them (firmware/lifts.py)
        kept = d.causes & ~lifted_by_signer(d._scopes)
        if kept:
            raise Refused(errors.OUT_OF_SCOPE, "an unlock for good lifts %s: not this key's scopes" % cause_names(kept))
    d.unlock_until = d.tb.after(seconds) if seconds else None
    if not seconds:
        d.recall_deadline = None  # forgiven for good: a new cause starts a fresh recall
    d.compliance.fire("unlock_token")
    d._log(ev.UNLOCK_START, value=seconds, detail="token")
    return "for good" if not seconds else "%d s" % seconds


def _grant_service(d, args):
    d.compliance.require("service_open")
    d.compliance.fire("service_open")
    d._log(ev.SERVICE_OPEN)
    return "service session open"


def _grant_service_close(d, args):
    d.compliance.require("service_close")
    now = d.tb.wall()
    next_service = int_arg(args, "next_service", now + 1, now + 400 * DAY)
    downloaded = args.get("downloaded")
    if downloaded is not None:
        int_arg(args, "downloaded", 0, d.log.head)
    cal = d.cal
    if cal is not None and cal.last != "as_found":
        from firmware.calibration import cal_failed  # imported: a calibration is in progress

        cal_failed(d, "calibration not finished")
    if downloaded is not None and downloaded > d.log.mark:  # the log the technician verified
        d.log.mark_downloaded(downloaded)
        d._log(ev.LOG_DOWNLOADED, value=downloaded)
    d.service_due = d.tb.after(next_service - now)
    d.violations = 0
    d.codes.service_reset()
    cleared = d.causes & CLEARED_BY_SERVICE & lifted_by_scope(d._scope)
    if cleared:
        d.causes &= ~cleared
        d._log(ev.CAUSE_CLEAR, value=cleared, detail="service")
    if not d.causes:
        d.recall_deadline = None
    d._log(ev.SERVICE_SUMMARY, value=d.causes, detail="next service %d" % next_service)
    d._log(ev.SERVICE_CLOSE)
    d.compliance.fire("service_close")
    return "next service %d" % next_service


def _grant_set_time(d, args):
    new = int_arg(args, "time", 0, 0xFFFFFFFF)
    old = d.tb.wall()
    d.tb.deadline_wall()  # record the high-water mark before the clock moves
    d.hw.clock.set_now(new)
    d.tb.deadline_wall()
    d._log(ev.CLOCK_CHANGE, value=new - old, detail="%d>%d" % (old, new))
    return "clock %d" % new


def _unpaid_arg(args):
    if args.get("cause") != "unpaid_balance":
        raise Refused(errors.BAD_ARGUMENT, "the only directive cause is unpaid_balance")


def _directive_seq(d, args, clear):
    """The directive's number, checked against the order (SPEC 9.4): a recall or lockout
    must be newer than every directive applied; a clear answers the lockout in force or
    a newer one (never an older one, never one already cleared)."""
    seq = int_arg(args, "seq", 0, 0xFFFFFFFF)
    last = d.directive_seq
    if seq < last:
        raise Refused(errors.SUPERSEDED, "directive %d is older than the last applied (%d)" % (seq, last))
    if seq == last and not (clear and d.causes & UNPAID):
        what = "the balance of lockout %d is cleared" if clear else "directive %d was applied"
        raise Refused(errors.SUPERSEDED, (what + " already") % seq)
    return seq


def _grant_recall(d, args):
    _unpaid_arg(args)
    d.directive_seq = _directive_seq(d, args, False)
    days = int_arg(args, "days", 0, 90)
    new = d.tb.after(days * DAY)
    current = d.recall_deadline
    if current is None or not d.compliance.flags() & (RECALL | LOCKED | SERVICE):
        d.recall_deadline = new
    else:  # a directive never extends a running countdown
        d.recall_deadline = [min(current[0], new[0]), min(current[1], new[1])]
    add_cause(d, UNPAID, "directive")
    return "recall %d days" % days


def _grant_lockout(d, args):
    _unpaid_arg(args)
    d.directive_seq = _directive_seq(d, args, False)
    d.causes |= UNPAID
    d._log(ev.CAUSE_SET, value=UNPAID, detail="unpaid_balance lockout directive")
    # the recall's time is up: whatever comes next (a service close, a code window's end)
    # falls back into the lockout, never into a fresh recall countdown (the terms: locked
    # out until serviced AND the balance is cleared); an open service visit stays open
    d.recall_deadline = d.tb.after(0)
    d.compliance.fire("lockout", "unpaid_balance")
    return "lockout"


def _grant_clear(d, args):
    _unpaid_arg(args)
    d.directive_seq = _directive_seq(d, args, True)
    clear_causes(d, UNPAID & lifted_by_scope(d._scope), "directive")
    return "cleared"


def _grant_work_order(d, args):
    order = args.get("order")
    if order not in WORK_ORDERS:
        raise Refused(errors.BAD_ARGUMENT, "unknown work order %r" % order)
    order_id = _text_arg(args, "id")
    vehicle = _text_arg(args, "vehicle")
    installation = order == "installation"
    compliance = d.compliance
    compliance.require("install" if installation else "remove", "%s while %s" % (order, compliance.state))
    if not installation:
        d.session.require("work_order")
    d._log(ev.WORK_ORDER, detail="%s %s %s" % (order, order_id, vehicle))
    # a work order lifts no cause (firmware/lifts.py): removal and installation carry
    # every cause, and its recall deadline, over
    if installation:
        d.vehicle = vehicle
        d.service_due = d.tb.after(d.config.service_interval_s)
        if d.calibration_due is None:
            d.calibration_due = d.tb.after(d.config.calibration_interval_s)
        carried = d.recall_deadline
        compliance.fire("install")
        if d.causes:
            d.recall_deadline = carried
            expired = carried is not None and d.tb.left(carried) == 0
            compliance.fire("lockout" if expired else "recall", "causes carried over")
    elif order == "vehicle_switch":
        d.vehicle = vehicle
        d.stall_at = None
    else:
        compliance.fire("remove")
    return "%s %s" % (order, order_id)
