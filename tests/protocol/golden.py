"""Loads protocol/vectors.json for the dual-runtime protocol tests (CPython and MicroPython)."""

import json
from binascii import unhexlify

from protocol.messages import fields as layout_fields


def _repo():
    path = __file__
    for _ in range(3):
        path = path[: path.rfind("/")]
    return path


_CACHE = []


def vectors():
    if not _CACHE:
        with open(_repo() + "/protocol/vectors.json") as f:
            _CACHE.append(json.load(f))
    return _CACHE[0]


def unhex(text):
    return unhexlify(text)


def fields_from_json(fields, layout):
    """Vector fields back to Python values: fixed-size and blob fields are hex in the file."""
    out = {}
    for name, kind in layout_fields(layout):
        value = fields[name]
        if kind not in ("B", "H", "I", "i", "s"):
            value = unhexlify(value)
        out[name] = value
    return out
