"""docs/board.md's wiring table says what firmware/boards/rp2.py's PINS says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def rp2_pins() -> dict:
    tree = ast.parse((REPO / "firmware/boards/rp2.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PINS":
            return ast.literal_eval(node.value)
    raise AssertionError("no PINS table in rp2.py")


def doc_rows() -> dict:
    rows = {}
    for line in (REPO / "docs/board.md").read_text().splitlines():
        match = re.match(r"\| `(\w+)` \| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = [int(n) for n in re.findall(r"GP(\d+)", match.group(2))]
    return rows


def test_every_pin_of_the_table_is_documented_as_wired():
    pins, rows = rp2_pins(), doc_rows()
    for signal, value in pins.items():
        if signal in ("lcd_i2c", "lcd_address", "supply_ratio_x1000"):
            continue  # a bus number, an I2C address and a ratio: not pins
        expected = list(value) if isinstance(value, tuple) else [value]
        assert rows.get(signal) == expected, f"{signal}: code {expected}, docs {rows.get(signal)}"
    assert set(rows) <= set(pins), set(rows) - set(pins)
