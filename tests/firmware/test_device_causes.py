"""The other recall causes (both runtimes): tamper, a nearly full log, and the billing
directives for an unpaid balance (recall, lockout, clear)."""

from firmware import eventlog
from firmware.config import Config
from protocol import messages
from tests.firmware.device_rig import DAY, Rig


def _causes(rig):
    return messages.bits_to_names(rig.device.causes, messages.CAUSES)


def test_a_disconnected_sensor_is_a_tamper_and_a_recall():
    rig = Rig()
    rig.sensor.attached = False
    rig.advance(1)
    assert rig.compliance == "early_service_recall" and _causes(rig) == ["tamper"]
    tamper = [r for r in rig.records() if r["kind"] == eventlog.TAMPER]
    assert tamper[-1]["value"] == eventlog.TAMPER_SENSOR_DISCONNECTED
    rig.sensor.attached = True
    rig.advance(1)
    assert "tamper_clear" in rig.kinds() and rig.compliance == "early_service_recall"


def test_a_tamper_is_only_logged_where_the_jurisdiction_says_so():
    rig = Rig(config=Config(tamper_recall=0))
    rig.device.tamper(eventlog.TAMPER_RELAY_BYPASS)
    assert rig.compliance == "normal" and "tamper" in rig.kinds()


def test_a_nearly_full_log_is_a_recall_cause_never_a_silent_loss():
    rig = Rig(log_segments=4, config=Config(log_full_pct=25))  # 16 records, a reserve of 4
    while rig.compliance == "normal":
        rig.ignition(True)
        rig.ignition(False)
    assert _causes(rig) == ["log_full"]
    assert rig.device.log.free_pct() <= 25
    # a service visit that downloads the log frees it
    rig.service()
    rig.close_service(downloaded=rig.device.log.head)
    assert rig.compliance == "normal" and rig.device.causes == 0
    assert "log_downloaded" in rig.kinds()


def test_an_unpaid_balance_recall_counts_down_to_a_lockout():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    assert rig.compliance == "early_service_recall" and _causes(rig) == ["unpaid_balance"]
    assert rig.screen.text == "SERVICE DUE 7 DAYS"
    rig.advance(6 * DAY + 12 * 3600)
    assert rig.screen.lines == ("LOCKOUT IN 12 H", "UNPAID BALANCE")
    rig.advance(12 * 3600)
    assert rig.compliance == "lockout" and rig.screen.text == "LOCKOUT CALL PROVIDER"


def test_a_second_directive_never_extends_the_countdown():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 3}, key="billing")
    rig.advance(DAY)
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    assert rig.device.recall_left() == 2 * DAY
    rig.token("recall", {"cause": "unpaid_balance", "days": 1}, key="billing")
    assert rig.device.recall_left() == DAY  # a shorter one does shorten it


def test_a_lockout_directive_is_immediate_and_clear_lifts_it():
    rig = Rig()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "lockout"
    assert rig.start(0) == "ignition_off"
    rig.ignition(False)
    rig.token("clear", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "normal" and rig.device.causes == 0
    assert rig.start(0) == "engine_enabled"


def test_clearing_one_cause_keeps_the_others():
    rig = Rig(config=Config(violation_threshold=0))
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    rig.device.tamper(eventlog.TAMPER_RELAY_BYPASS)
    rig.token("clear", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "early_service_recall" and _causes(rig) == ["tamper"]


def test_a_lockout_directive_during_a_visit_locks_out_when_it_closes():
    rig = Rig()
    rig.service()
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    assert rig.compliance == "service"
    rig.close_service()
    assert rig.compliance == "lockout" and _causes(rig) == ["unpaid_balance"]


def test_an_unpaid_recall_survives_the_visit_with_its_own_deadline():
    rig = Rig()
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    rig.advance(2 * DAY)
    rig.service()
    rig.close_service()
    assert rig.compliance == "early_service_recall" and rig.device.recall_left() == 5 * DAY
