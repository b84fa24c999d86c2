"""protocol/SPEC.md must not drift from the code: hex dumps, error codes, message types.

CPython only (it reads the Markdown with re).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from protocol import error_texts, errors, messages

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
SPEC = (PROTOCOL / "SPEC.md").read_text()
FLAT_HEX = re.sub(r"[^0-9a-f]", "", SPEC.lower())
VECTORS = json.loads((PROTOCOL / "vectors.json").read_text())


@pytest.mark.parametrize("row", VECTORS["frames"], ids=lambda r: r["name"])
def test_every_vector_frame_is_dumped_in_the_spec(row):
    wire = row["wire"]
    chunks = [wire[i : i + 64] for i in range(0, len(wire), 64)] if len(wire) > 128 else [wire]
    for chunk in chunks:
        assert chunk in FLAT_HEX, f"{row['name']}: {chunk[:32]}... not in SPEC.md"


@pytest.mark.parametrize("code", sorted(error_texts.MEANINGS))
def test_every_error_code_is_in_the_spec_table(code):
    name = next(n for n, v in vars(errors).items() if v == code and n.isupper())
    assert re.search(rf"\|\s*0x{code:02X}\s*\|\s*`?{name}`?\s*\|", SPEC, re.I), name


@pytest.mark.parametrize("type_", sorted(messages.CATALOGUE))
def test_every_message_type_is_in_the_spec(type_):
    name = messages.entry(type_)[0].upper()
    assert re.search(rf"0x{type_:02X}\b.*{name}|{name}.*0x{type_:02X}\b", SPEC, re.I), name
