"""docs/device.md keeps up with the code (both runtimes): the configuration table, the
display texts and the transition rows it describes."""

from firmware.config import DEFAULTS, JURISDICTIONS
from firmware.display_texts import ABORT_TEXTS, CAUSE_TEXTS, TEXTS
from firmware.transitions_table import ROWS, TRIGGER


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
    doc = _doc()
    for row in ROWS:
        assert row[TRIGGER] in doc, row[TRIGGER]
