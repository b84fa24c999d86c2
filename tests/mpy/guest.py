# Runs INSIDE MicroPython (the WASI build): imports one dual-runtime test file and runs
# the named test functions, printing one result line each. The host (tests/mpy/runner.py)
# substitutes MODULE_DIR, MODULE_NAME and TEST_NAMES before running this source.
import io
import json
import sys

sys.path.insert(0, "/repo")
sys.path.insert(0, MODULE_DIR)  # noqa: F821 — substituted by the host

_mod = __import__(MODULE_NAME)  # noqa: F821
for _name in TEST_NAMES:  # noqa: F821
    _fn = getattr(_mod, _name, None)
    if _fn is None:
        print("@@RESULT " + json.dumps({"name": _name, "ok": False, "trace": "not found under MicroPython"}))
        continue
    try:
        _fn()
        print("@@RESULT " + json.dumps({"name": _name, "ok": True}))
    except Exception as _exc:
        _buf = io.StringIO()
        sys.print_exception(_exc, _buf)
        print("@@RESULT " + json.dumps({"name": _name, "ok": False, "trace": _buf.getvalue()}))
print("@@DONE")
