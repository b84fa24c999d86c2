"""Test helpers for the dual-runtime test files: the same code on CPython and MicroPython.

    raises(ExceptionType, fn, *args, **kwargs) -> the exception fn raised
        (AssertionError when fn returns, or raises something else)
    check_rows(rows, check, label=None)
        runs check(row) on every row of a labelled table (rows carry a "name") and then
        fails once, listing EVERY failing row with its label and why, not only the first

Plain Python only (no pytest, no hypothesis), so a file that runs under real MicroPython
(tests/mpy/test_micropython.py) can use them.
"""


def _type_name(kind):
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def raises(kind, fn, *args, **kwargs):
    """The exception `fn(*args, **kwargs)` raises, checked to be a `kind` (a type or a tuple)."""
    try:
        fn(*args, **kwargs)
    except kind as exc:
        return exc
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", repr(fn)), _type_name(kind)))


def _why(exc):
    text = " ".join(str(arg) for arg in exc.args)
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


def check_rows(rows, check, label=None):
    """check(row) for every row; one AssertionError naming every failing row at the end."""
    failures = []
    count = 0
    for row in rows:
        count += 1
        try:
            check(row)
        except Exception as exc:  # noqa: BLE001 - every failing row is reported, the next row runs
            name = label(row) if label is not None else row.get("name", "row %d" % count)
            failures.append("  %s: %s" % (name, _why(exc)))
    if not count:
        raise AssertionError("the table has no rows")
    if failures:
        raise AssertionError("%d of %d rows fail:\n%s" % (len(failures), count, "\n".join(failures)))
