"""The scope x cause table of docs/security.md is firmware/lifts.py's data (both runtimes), and
the core's cause bits are the protocol's causes in order."""

from firmware import lifts
from protocol.messages import CAUSES
from protocol.tokens import SCOPES


def _doc():
    path = __file__
    for _ in range(3):
        path = path[: path.rfind("/")]
    with open(path + "/docs/security.md") as f:
        return f.read()


def test_the_documented_table_is_the_cores():
    doc = _doc()
    header = "| scope \\ cause | " + " | ".join(CAUSES) + " |"
    assert header in doc, header
    for scope in SCOPES:
        cells = []
        for i in range(len(CAUSES)):
            cells.append("lifts" if lifts.LIFTS[scope] & (1 << i) else "—")
        row = "| %s | %s |" % (scope, " | ".join(cells))
        assert row in doc, row


def test_every_scope_has_a_row_and_the_bits_are_the_protocols():
    assert sorted(lifts.LIFTS) == sorted(SCOPES)
    bits = (lifts.UNPAID, lifts.SERVICE_DUE, lifts.CALIBRATION_DUE, lifts.VIOLATIONS, lifts.TAMPER, lifts.LOG_FULL)
    for i in range(len(bits)):
        assert bits[i] == 1 << i, CAUSES[i]
    assert lifts.CALIBRATION_FAILED == 1 << CAUSES.index("calibration_failed")
    assert lifts.ALL_CAUSES == (1 << len(CAUSES)) - 1
    assert lifts.lifted_by_signer(None) == lifts.ALL_CAUSES
    assert lifts.lifted_by_scope("work_order") == 0 and lifts.lifted_by_scope("billing") == lifts.UNPAID
    assert lifts.lifted_by_scope(None) == 0
