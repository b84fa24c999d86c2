# Runs INSIDE MicroPython (the WASI build): imports one dual-runtime test file and runs
# the named test functions, printing one result line each. The host (tests/mpy/runner.py)
# substitutes MODULE_DIR, MODULE_NAME and TEST_NAMES before running this source.
#
# Written for the WASI build's garbage collector, which cannot see values held in wasm
# locals: a function whose frame exceeds 11 words lives on the heap and a collection while
# it runs frees it. So every function here keeps a small frame (no `except ... as`, which
# enlarges it: a context manager catches instead), and the loop state lives in objects.
import io
import json
import sys

sys.path.insert(0, "/repo")
sys.path.insert(0, MODULE_DIR)  # noqa: F821 — substituted by the host


class _Catch:
    def __enter__(self):
        self.exc = None
        return self

    def __exit__(self, kind, value, tb):
        self.exc = value
        return isinstance(value, Exception)


def _trace(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    return buf.getvalue()


def _report(name, ok, trace):
    print("@@RESULT " + json.dumps({"name": name, "ok": ok, "trace": trace}))


def _run(fn, catch):
    with catch:
        fn()


def _one(mod, name, catch):
    fn = getattr(mod, name, None)
    if fn is None:
        _report(name, False, "not found under MicroPython")
        return
    _run(fn, catch)
    if catch.exc is None:
        _report(name, True, "")
    else:
        _report(name, False, _trace(catch.exc))


def _main(mod, names):
    catch = _Catch()
    i = 0
    while i < len(names):
        _one(mod, names[i], catch)
        i += 1
    print("@@DONE")


_main(__import__(MODULE_NAME), TEST_NAMES)  # noqa: F821
