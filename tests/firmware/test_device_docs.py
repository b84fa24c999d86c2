"""docs/device.md keeps up with the code (both runtimes): the configuration table, the
display texts and the transition rows it describes."""

from firmware.config import DEFAULTS, JURISDICTIONS
from firmware.display_texts import ABORT_TEXTS, CAUSE_TEXTS, TEXTS
from firmware.transitions_table import DEST, GUARD, MACHINE, SOURCE, TRIGGER, rows
from protocol.messages import CAUSES

ROWS = rows()  # every row of the table, as field lists


def _doc():
    path = __file__
    for _ in range(3):
        path = path[: path.rfind("/")]
    with open(path + "/docs/device.md") as f:
        return f.read()


def test_every_setting_is_in_the_configuration_table_with_its_default_and_range():
    doc = _doc()
    for key in DEFAULTS:
        default, low, high = DEFAULTS[key]
        row = "| `%s` | %d | %d … %d |" % (key, default, low, high)
        assert row in doc, row
    for name in JURISDICTIONS:
        assert "`%s`" % name in doc, name


def test_every_screen_and_text_is_listed():
    doc = _doc()
    for name in TEXTS:
        assert "| %s |" % name in doc, name
    for text in CAUSE_TEXTS:
        assert text in doc, text
    for text in ABORT_TEXTS.values():
        assert text in doc, text


def test_every_trigger_is_described():
    """Each row of the table is a row of docs/device.md's transition table, in order, and
    that table has no row the table lacks."""
    doc = _doc()
    lines = [line for line in doc.splitlines() if line.startswith("| compliance |") or line.startswith("| session |")]
    documented = [line.split(" | ")[:5] for line in lines if line.count(" | ") == 6]
    wanted = [["| " + row[MACHINE], row[SOURCE], row[TRIGGER], row[GUARD] or "", row[DEST]] for row in ROWS]
    documented = [[cell.strip() if i else cell for i, cell in enumerate(cells)] for cells in documented]
    assert documented == wanted, "docs/device.md's transition table is stale (python -m host_tools.dev.diagrams)"


def test_the_causes_table_lists_every_cause_in_one_table():
    doc = _doc()
    table = doc.split("| cause | set by | cleared by |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(CAUSES)
