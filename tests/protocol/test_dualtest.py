"""The dual-runtime test helpers themselves (tests/dualtest.py), on both runtimes: raises()
returns the exception or fails, check_rows() reports every failing row by its label."""

from tests.dualtest import check_rows, raises


def _fail_with(kind, *args):
    raise kind(*args)


def test_raises_returns_the_exception():
    exc = raises(ValueError, _fail_with, ValueError, "bad")
    assert isinstance(exc, ValueError) and exc.args == ("bad",)
    assert isinstance(raises((KeyError, ValueError), _fail_with, KeyError, 1), KeyError)


def test_raises_fails_when_nothing_or_something_else_is_raised():
    try:
        raises(ValueError, len, "fine")
    except AssertionError as exc:
        assert "did not raise ValueError" in str(exc)
    else:
        raise AssertionError("raises() accepted a call that returned")
    try:
        raises(ValueError, _fail_with, KeyError, "other")
    except KeyError:
        pass  # another exception goes through untouched
    else:
        raise AssertionError("raises() swallowed another exception")


def _odd_only(row):
    assert row["n"] % 2 == 1, "even %d" % row["n"]


def test_check_rows_reports_every_failing_row_by_label():
    rows = [{"name": "one", "n": 1}, {"name": "two", "n": 2}, {"name": "three", "n": 3}, {"name": "four", "n": 4}]
    exc = raises(AssertionError, check_rows, rows, _odd_only)
    text = str(exc)
    assert text.startswith("2 of 4 rows fail:"), text
    assert "two: AssertionError" in text and "even 2" in text
    assert "four: AssertionError" in text and "even 4" in text
    assert "one" not in text and "three" not in text
    check_rows(rows[0::2], _odd_only)  # no failing row: no error


def test_check_rows_labels_and_refuses_an_empty_table():
    exc = raises(AssertionError, check_rows, [{"n": 2}], _odd_only, lambda row: "n=%d" % row["n"])
    assert "n=2: AssertionError" in str(exc)
    assert "row 1" in str(raises(AssertionError, check_rows, [{"n": 2}], _odd_only))
    assert "no rows" in str(raises(AssertionError, check_rows, [], _odd_only))
