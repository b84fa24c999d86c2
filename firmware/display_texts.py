"""Every text the handset shows: one table, and the rule that picks a screen.

TEXTS maps a screen name to its two lines (16 characters each at most; "%s" takes a
countdown or a value). Read together, the two lines make the message: "SERVICE DUE" /
"5 DAYS" is "SERVICE DUE 5 DAYS". `screen(device)` picks the screen for the device's
state: code entry first, then a driving session that needs the driver, then the
compliance state (with its countdown).
"""

DAY = 86400
HOUR = 3600

TEXTS = {
    # compliance, when no driving session needs the screen
    "factory": ("FACTORY MODE", "NOT PROVISIONED"),
    "removed": ("NOT INSTALLED", "WORK ORDER REQ"),
    "normal": ("LCI-777", "READY"),
    "service_soon": ("SERVICE IN", "%s"),  # SERVICE IN 5 DAYS
    "recall_days": ("SERVICE DUE", "%s"),  # SERVICE DUE 5 DAYS
    "recall_hours": ("LOCKOUT IN %s", "%s"),  # LOCKOUT IN 23 H / cause
    "lockout": ("LOCKOUT", "SERVICE REQUIRED"),
    "lockout_unpaid": ("LOCKOUT", "CALL PROVIDER"),
    "unlocked": ("UNLOCKED", "%s LEFT"),  # UNLOCKED 3 H 59 M LEFT
    "unlocked_for_good": ("UNLOCKED", "SERVICE DUE"),
    "service": ("SERVICE MODE", "TECHNICIAN"),
    # driving session
    "blow": ("PLEASE BLOW", "FOR START TEST"),
    "blow_again": ("BLOW AGAIN", "%s"),  # an abort's reason
    "passed": ("TEST PASSED", "DRIVE SAFELY"),
    "temporary_lockout": ("TEST FAILED", "WAIT %s"),  # WAIT 4 MIN
    "retest_due": ("RETEST - BLOW", "%s LEFT"),  # RETEST - BLOW 5 MIN LEFT
    "retest_again": ("RETEST - AGAIN", "%s LEFT"),
    "violation": ("RETEST VIOLATION", "TURN ENGINE OFF"),
    # keypad codes
    "code_request": ("CODE REQUEST", "%s"),  # the request code, grouped
    "code_entry": ("ENTER CODE", "%s"),
    "code_wait": ("WRONG CODE", "WAIT %s"),
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
    if seconds > 60:
        return "%d MIN" % ((seconds + 59) // 60)
    return "%d S" % (seconds if seconds > 0 else 0)


def hours_minutes(seconds):
    h = seconds // HOUR
    m = (seconds % HOUR + 59) // 60
    if m == 60:
        h, m = h + 1, 0
    return "%d H %d M" % (h, m) if h else "%d M" % m


def text(name, *values):
    """The two lines of screen `name`, values filled in, each cut to 16 characters."""
    line1, line2 = TEXTS[name]
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


def screen(device):
    """The (line1, line2) the handset shows for `device` now."""
    if not device.provisioned:
        return text("factory")
    codes = device.codes
    if codes.entry is not None:
        return text("code_entry", codes.entry + "_")
    wait = codes.wait_left(device.run_now())
    if codes.showing and wait > 0:
        return text("code_wait", minutes(wait))
    if codes.showing and codes.pending is not None:
        return text("code_request", codes.pending["request"])
    session = device.session.state
    if session == "test_requested":
        if device.last_abort:
            return text("blow_again", ABORT_TEXTS.get(device.last_abort, "BLOW AGAIN"))
        return text("blow")
    if session == "temporary_lockout":
        return text("temporary_lockout", minutes(device.hold_left()))
    if session == "retest_due":
        return text("retest_due", minutes(device.retest_left()))
    if session == "retest_in_progress":
        return text("retest_again", minutes(device.retest_left()))
    if session == "violation":
        return text("violation")
    compliance = device.compliance.state
    if compliance == "early_service_recall":
        left = device.recall_left()
        if left >= DAY:
            return text("recall_days", days(left))
        return text("recall_hours", hours(left), _first_cause(device.causes))
    if session == "engine_enabled":
        return text("passed")
    if compliance == "normal":
        left = device.service_left()
        if left <= device.config.service_notice_s:
            return text("service_soon", days(left))
        return text("normal")
    if compliance == "lockout":
        return text("lockout_unpaid" if device.causes & 1 else "lockout")
    if compliance == "code_unlock":
        left = device.override_left()
        if left is None:
            return text("unlocked_for_good")
        return text("unlocked", hours_minutes(left))
    if compliance == "service":
        return text("service")
    return text("removed")
