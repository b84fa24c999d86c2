# Runs INSIDE MicroPython (the unix port): imports one dual-runtime test file and runs the
# named test functions, printing one result line each. The host (tests/mpy/runner.py)
# prepends MODULE_NAME and TEST_NAMES and puts the bundle, the repository and the file's
# folder on MICROPYPATH.
import io
import json
import sys


def _report(name, ok, trace):
    print("@@RESULT " + json.dumps({"name": name, "ok": ok, "trace": trace}))


def _main(mod, names):
    for name in names:
        fn = getattr(mod, name, None)
        if fn is None:
            _report(name, False, "not found under MicroPython")
            continue
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, the next test runs
            buf = io.StringIO()
            sys.print_exception(exc, buf)
            _report(name, False, buf.getvalue())
        else:
            _report(name, True, "")
    print("@@DONE")


_main(__import__(MODULE_NAME), TEST_NAMES)  # noqa: F821
