"""Modules a board imports for a rare job and drops after it, so their code leaves the heap.

    drop("firmware.ed25519", "protocol.tokens")   after a token check
    drop("firmware.calibration")                   when no calibration is in progress

Under MicroPython each module is removed from sys.modules and from its package, so nothing
refers to its code any more and the next collection frees it; the next import loads it
afresh from flash. CPython keeps its modules (the simulator and the tests run there).
Drop a module only when no object of it is left alive (an instance of one of its classes,
a function of it kept somewhere): that object would keep a second copy of its code.
"""

import sys


def drop(*names):
    if sys.implementation.name != "micropython":
        return
    for name in names:
        sys.modules.pop(name, None)
        dot = name.rfind(".")
        parent = sys.modules.get(name[:dot])
        if parent is not None and hasattr(parent, name[dot + 1 :]):
            delattr(parent, name[dot + 1 :])
