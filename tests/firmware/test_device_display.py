"""The handset's texts (both runtimes): every screen fits 2 x 16 characters with the
largest values, and countdowns round the way a driver expects (never 0 while time is left)."""

from firmware import display_texts as dt
from tests.firmware.device_rig import Rig

SAMPLES = {
    "service_soon": ("400 DAYS",),
    "recall_days": ("90 DAYS",),
    "recall_hours": ("24 H", "CALIBRATION DUE"),
    "unlocked": ("24 H",),
    "blow_again": ("WAIT - PURGING",),
    "temporary_lockout": ("1440 MIN",),
    "retest_due": ("60 MIN",),
    "retest_again": ("60 MIN",),
    "code_request": ("1234 5678 9012",),
    "code_entry": ("1234567890123456_",),
    "code_wait": ("43200 MIN",),
}


def test_every_screen_fits_the_display():
    for name in dt.TEXTS:
        line1, line2 = dt.text(name, *SAMPLES.get(name, ()))
        assert len(line1) <= 16 and len(line2) <= 16, name
        assert "%" not in line1 + line2, name
    for text in dt.CAUSE_TEXTS + tuple(dt.ABORT_TEXTS.values()):
        assert len(text) <= 16, text


def test_countdowns_round_up():
    assert dt.days(7 * 86400) == "7 DAYS" and dt.days(86401) == "2 DAYS" and dt.days(86400) == "1 DAY"
    assert dt.hours(23 * 3600 + 1) == "24 H" and dt.hours(3601) == "2 H" and dt.hours(3600) == "60 M"
    assert dt.hours(1) == "1 M"
    assert dt.minutes(300) == "5 MIN" and dt.minutes(61) == "2 MIN" and dt.minutes(60) == "60 S"
    assert dt.minutes(41) == "50 S" and dt.minutes(1) == "10 S" and dt.minutes(0) == "0 S"


def test_the_screen_changes_exactly_when_its_countdown_says():
    rig = Rig()
    rig.screen_ticks = True  # step at every countdown change
    rig.token("recall", {"cause": "unpaid_balance", "days": 2}, key="billing")
    rig.advance(2 * 86400)
    seen = rig.screen.seen
    assert "SERVICE DUE 2 DAYS" in seen and "SERVICE DUE 1 DAY" not in seen
    for hour in range(2, 25):
        assert "LOCKOUT IN %d H UNPAID BALANCE" % hour in seen, hour
    assert "LOCKOUT IN 1 H UNPAID BALANCE" not in seen  # the last hour is in minutes
    for minute in range(1, 61):
        assert "LOCKOUT IN %d M UNPAID BALANCE" % minute in seen, minute
    assert rig.screen.shown[-1] == "LOCKOUT CALL PROVIDER"
    assert rig.compliance == "lockout"
