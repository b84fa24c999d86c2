"""Signed tokens through the authority double (both runtimes): unlock, rejections that change
nothing, replay across a reboot, set-time, and work orders."""

from firmware import eventlog
from firmware.config import Config
from protocol import errors
from protocol.endpoint import Refused
from tests.firmware.authority_double import mint
from tests.firmware.device_rig import DAY, Rig


def refused(rig, action, args=None, **kw):
    try:
        rig.token(action, args, **kw)
    except Refused as refusal:
        return refusal.code
    return None


def _locked():
    rig = Rig()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    return rig


def test_an_unlock_token_lifts_a_lockout_for_its_seconds():
    rig = _locked()
    assert rig.token("unlock", {"seconds": 7200}) == ("unlock", "7200 s")
    assert rig.compliance == "code_unlock" and rig.device.override_left() == 7200
    assert rig.start(0) == "engine_enabled"
    rig.ignition(False)
    rig.advance(7200)
    assert rig.compliance == "lockout"
    assert "token_accepted" in rig.kinds()


def test_an_unlock_for_good_lasts_until_the_next_recall():
    rig = _locked()
    rig.token("unlock", {"seconds": 0})
    assert rig.compliance == "code_unlock" and rig.device.override_left() is None
    assert rig.screen.text == "UNLOCKED SERVICE DUE"
    rig.advance(30 * DAY)
    assert rig.compliance == "code_unlock"
    rig.device.tamper(eventlog.TAMPER_RELAY_BYPASS)  # a new cause: a new recall
    assert rig.compliance == "early_service_recall" and rig.device.recall_left() == 7 * DAY


def _snapshot(rig):
    d = rig.device
    return (d._state(), d.compliance.state, d.session.state, d.used_ids[:], rig.clock.wall)


def test_every_rejected_token_is_logged_and_changes_nothing():
    rig = _locked()
    nonce = rig.nonce()
    cases = (
        (errors.BAD_SIGNATURE, "unlock", {"seconds": 60}, {"sig": "forged"}),
        (errors.WRONG_DEVICE, "unlock", {"seconds": 60}, {"serial": "LCI-0002"}),
        (errors.EXPIRED, "unlock", {"seconds": 60}, {"expires": rig.clock.wall - 1}),
        (errors.NOT_YET_VALID, "unlock", {"seconds": 60}, {"issued": rig.clock.wall + 60}),
        (errors.OUT_OF_SCOPE, "unlock", {"seconds": 60}, {"key": "calibrator"}),
        (errors.UNKNOWN_KEY, "unlock", {"seconds": 60}, {"key": "mallory"}),
        (errors.SESSION_MISMATCH, "set_time", {"time": 5}, {"nonce": b"X" * 16}),
        (errors.SESSION_MISMATCH, "service", {}, {}),  # a service token must be session-bound
        (errors.BAD_ARGUMENT, "unlock", {"seconds": -1}, {}),
        (errors.BAD_ARGUMENT, "unlock", {"seconds": "60"}, {}),
        (errors.BAD_ARGUMENT, "recall", {"cause": "dislike", "days": 7}, {"key": "billing"}),
        (errors.NOT_IN_SERVICE, "service_close", {"next_service": rig.clock.wall + DAY}, {"nonce": nonce}),
        (errors.WORK_ORDER_MISMATCH, "work_order", {"order": "installation", "id": "W", "vehicle": ""}, {"key": "office"}),
        (errors.BAD_ARGUMENT, "work_order", {"order": "theft", "id": "W", "vehicle": ""}, {"key": "office"}),
        (errors.WORK_ORDER_REQUIRED, "unlock", {"seconds": 60, "order": "removal"}, {}),
    )
    for code, action, args, kw in cases:
        before = _snapshot(rig)
        head = rig.device.log.head
        total = rig.refusal_total("token")
        got = refused(rig, action, args, **kw)
        assert got == code, (action, args, kw, got)
        assert _snapshot(rig) == before, (action, args)
        # counted, with its code; in the log at once or in the next minute's summary
        assert rig.refusal_total("token") == total + 1 and rig.last_refusal("token")[0] == code
        new = rig.records(head)
        assert [r["kind"] for r in new] in ([], [eventlog.REFUSALS]), (action, new)
    try:
        rig.device.apply_token(b"\xff not json", nonce)
    except Refused as refusal:
        assert refusal.code == errors.MALFORMED_TOKEN
    else:
        raise AssertionError("garbage accepted")
    assert rig.compliance == "lockout"


def test_a_token_works_once_even_after_a_reboot():
    rig = _locked()
    token = mint("unlock", {"seconds": 60})
    rig.device.apply_token(token, rig.nonce())
    rig.advance(61)
    assert rig.compliance == "lockout"
    rig.reboot()
    try:
        rig.device.apply_token(token, rig.nonce())
    except Refused as refusal:
        assert refusal.code == errors.ALREADY_APPLIED
    else:
        raise AssertionError("replayed token accepted")
    assert rig.compliance == "lockout"


def test_set_time_moves_the_wall_clock_and_is_logged():
    rig = Rig()
    now = rig.clock.wall
    rig.token("set_time", {"time": now + 3600}, nonce=rig.nonce())
    assert rig.clock.wall == now + 3600
    change = [r for r in rig.records() if r["kind"] == eventlog.CLOCK_CHANGE][-1]
    assert change["value"] == 3600 and change["detail"] == "%d>%d" % (now, now + 3600)


def test_a_removal_needs_a_work_order_and_a_removed_unit_returns_only_by_one():
    rig = Rig()
    rig.start(0)
    assert refused(rig, "work_order", {"order": "removal", "id": "WO-9", "vehicle": ""}, key="office") == errors.NOT_PERMITTED
    rig.ignition(False)
    rig.work_order("removal")
    assert rig.compliance == "removed" and rig.screen.text == "NOT INSTALLED WORK ORDER REQ"
    assert rig.start(0) == "ignition_off"  # no starts from a removed unit
    rig.ignition(False)
    # without a work order nothing brings it back, and each attempt is counted
    total = rig.refusal_total("token")
    for action, args, kw in (
        ("unlock", {"seconds": 0}, {}),
        ("service", {}, {"nonce": rig.nonce()}),
        ("clear", {"cause": "unpaid_balance"}, {"key": "billing"}),
    ):
        assert refused(rig, action, args, **kw) == errors.WORK_ORDER_REQUIRED
        assert rig.last_refusal("token")[0] == errors.WORK_ORDER_REQUIRED
    assert rig.refusal_total("token") == total + 3
    assert refused(rig, "work_order", {"order": "removal", "id": "WO-10", "vehicle": ""}, key="office") == errors.WORK_ORDER_MISMATCH
    rig.work_order("installation", vehicle="2T1BURHE0JC000001")
    assert rig.compliance == "normal" and rig.device.vehicle == "2T1BURHE0JC000001"
    orders = [r["detail"] for r in rig.records() if r["kind"] == eventlog.WORK_ORDER]
    assert orders[-2].startswith("removal") and orders[-1].startswith("installation")


def test_exchanges_and_vehicle_switch():
    rig = Rig()
    rig.work_order("vehicle_switch", vehicle="NEW-VIN")
    assert rig.compliance == "normal" and rig.device.vehicle == "NEW-VIN"
    rig.work_order("handset_exchange")
    assert rig.compliance == "removed"
    rig.work_order("installation")
    rig.work_order("exchange")
    assert rig.compliance == "removed"


def test_a_work_order_for_another_device_is_refused():
    rig = Rig()
    assert refused(rig, "work_order", {"order": "removal", "id": "W", "vehicle": ""}, key="office", serial="LCI-0099") == errors.WRONG_DEVICE
    assert refused(rig, "work_order", {"order": "removal", "id": "W", "vehicle": ""}, key="billing") == errors.OUT_OF_SCOPE
    assert rig.compliance == "normal"


def test_used_token_ids_are_bounded():
    rig = Rig(config=Config(used_tokens_kept=4))
    for n in range(6):  # real tokens expire: each a little later than the one before
        rig.token("set_time", {"time": rig.clock.wall}, nonce=rig.nonce(), expires=rig.clock.wall + 600 + n)
    assert len(rig.device.used_ids) == rig.config.used_tokens_kept
