"""Every text the handset shows: one table, and the rule that picks a screen.

TEXTS maps a screen name to its two lines as one string, "LINE 1|LINE 2" (16 characters
each at most; "%s" takes a countdown or a value). Read together, the two lines make the
message: "SERVICE DUE" / "5 DAYS" is "SERVICE DUE 5 DAYS". `screen(device)` picks the
screen for the device's state: code entry first, then a driving session that needs the
driver, then the compliance state (with its countdown), told apart by the states' flags
(firmware/transitions_table.py).
"""

from firmware.transitions_table import (
    AGAIN,
    ALARM,
    ENGINE,
    HOLD,
    INSTALLED,
    LOCKED,
    RECALL,
    RETEST,
    SERVICE,
    START_TEST,
    WINDOW,
)
from protocol.coretime import DAY, HOUR

TEXTS = {
    # compliance, when no driving session needs the screen
    "factory": "FACTORY MODE|NOT PROVISIONED",
    "removed": "NOT INSTALLED|WORK ORDER REQ",
    "normal": "LCI-777|READY",
    "service_soon": "SERVICE IN|%s",  # SERVICE IN 5 DAYS
    "recall_days": "SERVICE DUE|%s",  # SERVICE DUE 5 DAYS
    "recall_hours": "LOCKOUT IN %s|%s",  # LOCKOUT IN 23 H / cause
    "lockout": "LOCKOUT|SERVICE REQUIRED",
    "lockout_unpaid": "LOCKOUT|CALL PROVIDER",
    "unlocked": "UNLOCKED|%s LEFT",  # UNLOCKED 4 H LEFT, then 59 M LEFT
    "unlocked_for_good": "UNLOCKED|SERVICE DUE",
    "service": "SERVICE MODE|TECHNICIAN",
    # driving session
    "blow": "PLEASE BLOW|FOR START TEST",
    "blow_again": "BLOW AGAIN|%s",  # an abort's reason
    "passed": "TEST PASSED|DRIVE SAFELY",
    "temporary_lockout": "TEST FAILED|WAIT %s",  # WAIT 4 MIN
    "retest_due": "RETEST - BLOW|%s LEFT",  # RETEST - BLOW 5 MIN LEFT
    "retest_again": "RETEST - AGAIN|%s LEFT",
    "violation": "RETEST VIOLATION|TURN ENGINE OFF",
    # keypad codes
    "code_request": "CODE REQUEST|%s",  # the request code, grouped
    "code_entry": "ENTER CODE|%s",
    "code_wait": "WRONG CODE|WAIT %s",
}

# what the second line says about a recall cause (protocol.messages.CAUSES order)
CAUSE_TEXTS = (
    "UNPAID BALANCE",
    "SERVICE DUE",
    "CALIBRATION DUE",
    "VIOLATIONS",
    "TAMPER",
    "LOG FULL",
    "CAL FAILED",
)

ABORT_TEXTS = {
    "purging": "WAIT - PURGING",
    "incomplete": "BLOW LONGER",
    "low_volume": "MORE AIR",
    "temperature": "BREATH TEMP",
    "sensor": "SENSOR FAULT",
}


def days(seconds):
    n = (seconds + DAY - 1) // DAY
    return "%d DAY" % n if n == 1 else "%d DAYS" % n


def hours(seconds):
    """23 H, then 59 M in the last hour (rounded up: never shows 0 while time is left)."""
    if seconds > HOUR:
        return "%d H" % ((seconds + HOUR - 1) // HOUR)
    return "%d M" % ((seconds + 59) // 60)


def minutes(seconds):
    """4 MIN, then 50 S, 40 S ... in the last minute (rounded up)."""
    if seconds > 60:
        return "%d MIN" % ((seconds + 59) // 60)
    return "%d S" % ((seconds + 9) // 10 * 10 if seconds > 0 else 0)


def text(name, *values):
    """The two lines of screen `name`, values filled in, each cut to 16 characters."""
    line1, line2 = TEXTS[name].split("|")
    i = 0
    if "%s" in line1:
        line1 = line1 % values[i]
        i += 1
    if "%s" in line2:
        line2 = line2 % values[i]
    return line1[:16], line2[:16]


def _first_cause(causes):
    for i in range(len(CAUSE_TEXTS)):
        if causes & (1 << i):
            return CAUSE_TEXTS[i]
    return ""


def _tick(left, unit):
    """Seconds until a countdown of `left` shown in whole `unit`s (rounded up) changes."""
    return (left - 1) % unit + 1 if left > 0 else 0


def _minutes_tick(left):
    return _tick(left, 60 if left > 60 else 10)


def screen(device):
    """(line1, line2, tick): what the handset shows for `device` now, and the seconds
    until a countdown on it changes (0: nothing counts down)."""
    if not device.provisioned:
        return text("factory") + (0,)
    tb = device.tb
    codes = device.codes
    if codes.entry is not None:
        return text("code_entry", codes.entry + "_") + (0,)
    wait = codes.wait_left(tb)
    if codes.showing and wait > 0:
        return text("code_wait", minutes(wait)) + (_minutes_tick(wait),)
    if codes.showing and codes.pending is not None:
        return text("code_request", codes.pending["request"]) + (0,)
    session = device.session.flags()
    if session & START_TEST:
        if device.last_abort:
            return text("blow_again", ABORT_TEXTS.get(device.last_abort, "BLOW AGAIN")) + (0,)
        return text("blow") + (0,)
    if session & HOLD:
        left = device.hold_left()
        return text("temporary_lockout", minutes(left)) + (_minutes_tick(left),)
    if session & RETEST:
        left = device.retest_left()
        return text("retest_again" if session & AGAIN else "retest_due", minutes(left)) + (_minutes_tick(left),)
    if session & ALARM:
        return text("violation") + (0,)
    compliance = device.compliance.flags()
    if compliance & RECALL:
        left = device.recall_left()
        if left > DAY:  # then the last 24 hours in hours
            return text("recall_days", days(left)) + (_tick(left, DAY),)
        unit = HOUR if left > HOUR else 60
        return text("recall_hours", hours(left), _first_cause(device.causes)) + (_tick(left, unit),)
    if session & ENGINE:
        return text("passed") + (0,)
    if compliance & WINDOW:
        left = device.override_left()
        if left is None:
            return text("unlocked_for_good") + (0,)
        return text("unlocked", hours(left)) + (_tick(left, HOUR if left > HOUR else 60),)
    if compliance & LOCKED:
        return text("lockout_unpaid" if device.causes & 1 else "lockout") + (0,)
    if compliance & SERVICE:
        return text("service") + (0,)
    if not compliance & INSTALLED:
        return text("removed") + (0,)
    left = device.service_left()
    notice = device.config.service_notice_s
    if left <= notice:
        return text("service_soon", days(left)) + (_tick(left, DAY),)
    return text("normal") + (left - notice if left - notice < 0x7FFFFFF else 0,)
