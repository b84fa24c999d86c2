"""Which functions would get a heap-allocated frame under MicroPython (the WASI GC hazard).

MicroPython puts a call's frame (locals + value stack + exception handlers) on the C stack
when it is at most 11 words, else on the heap. The WASI build used by the tests does not
see heap-allocated frames as GC roots, so a garbage collection while such a frame is live
frees it under the running function. Code that allocates a lot (an Ed25519 verification
makes about 800 kB of garbage on a 1 MB heap) therefore keeps every frame small.

heap_framed(functions) calls each function with an unexpected keyword argument: the frame
is allocated before the arguments are checked, so the TypeError costs the frame's bytes
when it is on the heap and nothing more when it is not. Under CPython it returns None.
"""

import gc


def _cost(fn):
    before = gc.mem_alloc()
    try:
        fn(unexpected_keyword_for_frame_probe=1)
    except TypeError:
        pass
    return gc.mem_alloc() - before


def _reference(a):
    return a


def functions_of(module):
    """Every function and method defined in `module` (by its name, or Class.name)."""
    out = []
    kind = type(_reference)
    for name in dir(module):
        value = getattr(module, name)
        if type(value) is kind:
            out.append((name, value))
        elif type(value) is type and getattr(value, "__module__", None) in (None, module.__name__):
            for attr in dir(value):
                member = getattr(value, attr)
                if type(member) is kind:
                    out.append((name + "." + attr, member))
    return out


def heap_framed(functions):
    """Names of the (name, function) pairs whose frame lands on the heap; None on CPython."""
    if not hasattr(gc, "mem_alloc"):
        return None
    base = _cost(_reference)
    out = []
    for name, fn in functions:
        if _cost(fn) > base:
            out.append(name)
    return out
