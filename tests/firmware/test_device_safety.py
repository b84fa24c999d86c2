"""Safety properties a review found broken, kept as regressions (both runtimes).

- an open technician session never lets a vehicle start (the handset is on the bench);
- a temporary lockout that ends after compliance turned to lockout never leads to a start;
- a pass never starts a vehicle whose compliance forbids starts.
"""

from tests.firmware.device_rig import DAY, Rig


def test_a_service_session_does_not_lift_a_lockout():
    rig = Rig()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.service()
    assert rig.compliance == "service"
    rig.start(0)
    assert not rig.device.hw.relay.on and rig.session != "engine_enabled"
    rig.ignition(False)
    rig.advance(30 * DAY)  # left open for a month: still no start
    rig.start(0)
    assert not rig.device.hw.relay.on


def test_no_start_in_a_service_session_even_without_causes():
    rig = Rig()
    rig.service()
    rig.start(0)
    assert not rig.device.hw.relay.on
    rig.ignition(False)
    rig.close_service()
    assert rig.compliance == "normal"
    rig.advance(600)
    assert rig.start(0) == "engine_enabled" and rig.device.hw.relay.on


def test_a_hold_that_ends_in_a_lockout_does_not_open_a_start_test():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    rig.advance(7 * DAY - 120)  # two minutes before the recall runs out
    rig.ignition(True)
    rig.blow(500)  # a failed start test: a 5-minute hold, the ignition left on
    assert rig.session == "temporary_lockout"
    rig.advance(10 * 60)  # the recall expires during the hold, then the hold ends
    assert rig.compliance == "lockout"
    assert rig.session != "test_requested"
    rig.blow(0)
    assert not rig.device.hw.relay.on and rig.session != "engine_enabled"


def test_a_service_visit_does_not_turn_an_unpaid_lockout_into_a_new_recall():
    rig = Rig()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.service()
    rig.close_service()
    assert rig.compliance == "lockout"  # serviced, but the balance is not cleared
    rig.start(0)
    assert not rig.device.hw.relay.on
    rig.ignition(False)
    rig.token("clear", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "normal"


def test_a_log_too_full_to_record_a_test_stops_starts():
    rig = Rig(log_segments=4)  # 16 records of space, a reserve for state changes
    starts = 0
    for _ in range(40):
        rig.start(0)
        if rig.device.hw.relay.on:
            starts += 1
        rig.ignition(False)
        rig.advance(600)
    passes = rig.kinds().count("test_pass")
    assert starts == passes  # every start that happened has its test in the log
    assert starts < 40 and not rig.device.starts_allowed()


def test_time_passed_while_off_stays_counted_when_the_clock_is_set_back():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    rig.reboot(off_s=DAY)  # a day with the power off: only the wall clock counts it
    left = rig.device.recall_left()
    assert left <= 6 * DAY
    rig.token("set_time", {"time": rig.clock.wall - DAY}, nonce=rig.nonce())
    assert rig.device.recall_left() <= left  # moving the clock back extends nothing
