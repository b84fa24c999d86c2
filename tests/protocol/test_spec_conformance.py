"""protocol/SPEC.md's tables are the expectations: the reference implementation must match
them, so the spec and the code cannot drift apart.

Each test parses Markdown tables out of SPEC.md and checks them against the code or, where a
device behaviour is at stake, against the device over real frames: the NACK code table
against protocol/errors.py, the message catalogue and every layout table against
protocol/messages.py, the enumerations and capability bits, the CONFIG_GET table against
firmware/config.py and against the device's CONFIG_GET reply, the Damm table against
protocol/keycodes.py, the record layout, record types and reserve kinds against
protocol/logrecord.py, the token actions and directive causes against protocol/tokens.py,
the NACK precedence table against errors.py and the device, and Appendix B against the
constants. CPython only (it reads Markdown with re).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from firmware import config as firmware_config
from firmware import handler
from protocol import (
    dedupe,
    endpoint,
    error_texts,
    errors,
    framing,
    keycodes,
    logrecord,
    messages,
    tokens,
)
from tests.firmware.authority_double import mint
from tests.firmware.device_rig import Rig
from tests.firmware.test_handler import Host
from tests.protocol import gen_vectors

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
SPEC = (PROTOCOL / "SPEC.md").read_text()
LINES = SPEC.splitlines()


# ---- a small Markdown reader -----------------------------------------------------------------
def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())
    return [p.strip().replace("\\|", "|") for p in parts[1:-1]]


def section(prefix: str) -> list[str]:
    """The lines of the section whose heading starts with `prefix` (e.g. "### 6.7"), up to the
    next heading of the same or a higher level."""
    level = prefix.split()[0]
    for i, line in enumerate(LINES):
        if line.startswith(prefix):
            out = []
            for line2 in LINES[i + 1 :]:
                if line2.startswith("#") and len(line2.split()[0]) <= len(level) and line2.split()[0].strip("#") == "":
                    break
                out.append(line2)
            return out
    raise AssertionError(f"no section {prefix!r} in SPEC.md")


def tables(lines: list[str]) -> list[tuple[list[str], list[list[str]], str]]:
    """Every table in `lines`: (header cells, rows of cells, the last non-table line above it)."""
    out = []
    i = 0
    above = ""
    while i < len(lines):
        line = lines[i]
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:\-|]+\|$", lines[i + 1]):
            header = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            out.append((header, rows, above))
            continue
        if line.strip():
            above = line.strip()
        i += 1
    return out


def table(lines: list[str], *header_start: str) -> list[dict]:
    """The rows (as dicts) of the one table in `lines` whose header starts with these cells."""
    found = [t for t in tables(lines) if tuple(t[0][: len(header_start)]) == header_start]
    assert len(found) == 1, (header_start, len(found))
    header, rows, _above = found[0]
    return [dict(zip(header, row, strict=True)) for row in rows]


def _int(text: str) -> int:
    return int(text.replace(" ", "").replace("−", "-"), 0)


def _bare(text: str) -> str:
    return text.strip("`* ")


# ---- error codes -------------------------------------------------------------------------------
def test_the_nack_code_table_is_protocol_errors():
    rows = table(section("## 10."), "code", "name", "meaning")
    spec = {_int(r["code"]): (r["name"], r["meaning"]) for r in rows}
    code_names = {v: n for n, v in vars(errors).items() if n.isupper() and isinstance(v, int)}
    assert set(spec) == set(error_texts.MEANINGS) == set(code_names)
    for code, (name, meaning) in spec.items():
        assert name == code_names[code], hex(code)
        assert meaning == error_texts.MEANINGS[code], hex(code)


def test_every_nack_code_lies_in_its_group():
    groups = table(section("## 10."), "group", "area")
    assert len(groups) >= 7
    for code in error_texts.MEANINGS:
        assert code != 0 and code >> 4 <= 6


# ---- the message catalogue and the layouts ------------------------------------------------
def test_the_message_type_table_is_the_catalogue():
    rows = table(section("### 4.2"), "type", "reply", "name", "direction", "purpose")
    spec = {}
    for r in rows:
        spec[_int(r["type"])] = (r["name"], r["reply"])
    assert spec.pop(messages.EVENT)[0] == "EVENT"
    assert spec.pop(messages.NACK)[0] == "NACK"
    assert set(spec) == set(messages.CATALOGUE)
    for type_, (name, reply) in spec.items():
        entry = messages.entry(type_)
        assert name == entry[0].upper()
        if entry[2] is None:
            assert reply == "none", name
        else:
            assert _int(reply.split()[0]) == type_ | messages.REPLY, name


_KINDS = {"u8": "B", "u16": "H", "u32": "I", "i32": "i", "string": "s", "blob": "b", "rest": "*"}


def _kind(text: str) -> str:
    m = re.fullmatch(r"bytes\[(\d+)\]", text)
    return f"{m.group(1)}s" if m else _KINDS[text]


def _layout_tables(prefix: str) -> dict[str, list[tuple[str, str, str]]]:
    """"request" / "reply" -> [(offset, field, kind)] of a section of the catalogue."""
    out: dict = {}
    for header, rows, above in tables(section(prefix)):
        if header[:3] != ["offset", "field", "kind"]:
            continue
        which = "reply" if above.startswith("Reply") or above.startswith("Reply pages") else "request"
        assert which not in out, (prefix, which)
        out[which] = [(r[0], _bare(r[1]), _kind(r[2])) for r in rows]
    return out


def _check_offsets(prefix, rows, layout):
    at = 0
    fixed = True
    for (offset, name, _kind), (_lname, lkind) in zip(rows, layout, strict=True):
        if fixed:
            assert _int(offset) == at, (prefix, name, offset, at)
        else:
            assert offset == "…", (prefix, name, offset)
        if lkind in ("s", "b", "*"):
            fixed = False
        elif fixed:
            at += struct.calcsize("<" + lkind) if lkind in "BHIi" else int(lkind[:-1])


@pytest.mark.parametrize("type_", sorted(messages.CATALOGUE))
def test_every_layout_table_is_the_message_layout(type_):
    name, request, reply = messages.entry(type_)
    heading = next(line for line in LINES if re.match(rf"^### 6\.\d+ {name.upper()} \(0x{type_:02x}", line))
    prefix = heading.split("(")[0].strip()
    found = _layout_tables(prefix)
    if type_ == messages.PING:  # written inline: "Request: `data`, rest ... Reply (0xb0): `data`, rest"
        assert "Request: `data`, rest" in "\n".join(section(prefix))
        assert messages.fields(request) == messages.fields(reply) == [("data", "*")]
        return
    for which, text in (("request", request), ("reply", reply)):
        layout = None if text is None else messages.fields(text)
        if not layout:
            assert which not in found, (name, which)
            continue
        rows = found[which]
        assert [(r[1], r[2]) for r in rows] == list(layout), (name, which)
        _check_offsets(name, rows, layout)


@pytest.mark.parametrize("prefix,layout", [("### 6.14", messages.EVENT_LAYOUT), ("### 6.15", messages.NACK_LAYOUT)])
def test_event_and_nack_layout_tables(prefix, layout):
    rows = table(section(prefix), "offset", "field", "kind", "meaning")
    assert [(_bare(r["field"]), _kind(r["kind"])) for r in rows] == messages.fields(layout)


def test_the_header_table_is_the_frame_header():
    rows = table(section("### 3.3"), "offset", "size", "field", "meaning")
    assert [(_int(r["offset"]), _int(r["size"]), _bare(r["field"])) for r in rows] == [
        (0, 1, "version"), (1, 1, "type"), (2, 1, "flags"), (3, 2, "seq"), (5, 2, "length"),
    ]
    assert struct.calcsize(framing._HEADER) == framing.HEADER_LEN == 7


def test_the_flag_table_is_framing():
    rows = table(section("### 4.1"), "bit", "value", "name", "set by", "meaning")
    named = {_bare(r["name"]): _int(r["value"]) for r in rows if r["name"].startswith("`")}
    assert named == {n: getattr(framing, n) for n in ("F_RESPONSE", "F_EVENT", "F_MORE", "F_RETRY")}


# ---- enumerations -------------------------------------------------------------------------------
def _enum(header_first: str, title: str, *more: str) -> list[dict]:
    """The table under the bold title `title` in section 5.2."""
    lines = section("### 5.2")
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("**")), len(lines))
    return table(lines[start:end], header_first, *(more or ("name",)))


def test_state_enumerations_are_the_messages_tuples():
    for title, names in (("**Compliance states**", messages.COMPLIANCE_STATES),
                         ("**Driving-session states**", messages.SESSION_STATES),
                         ("**Action codes**", messages.ACTIONS)):
        rows = _enum("value", title)
        assert [(_int(r["value"]), r["name"]) for r in rows] == list(enumerate(names)), title


def test_cause_bits_are_the_messages_causes():
    rows = [r for r in _enum("bit", "**Causes**", "mask", "name") if "reserved" not in r["name"]]
    assert [(_int(r["bit"]), _int(r["mask"]), r["name"].split()[0]) for r in rows] == [
        (i, 1 << i, name) for i, name in enumerate(messages.CAUSES)
    ]


def test_calibration_steps_bench_inputs_and_event_kinds():
    steps = _enum("value", "**Calibration steps**")
    assert [(_int(r["value"]), r["name"]) for r in steps] == [
        (getattr(messages, r["name"]), r["name"]) for r in steps
    ] and len(steps) == 4
    bench = _enum("value", "**Bench inputs**")
    assert {r["name"]: _int(r["value"]) for r in bench} == {
        n: v for n, v in vars(messages).items() if n.startswith("BENCH_")
    }
    events = _enum("value", "**Event kinds**")
    assert {r["name"]: _int(r["value"]) for r in events} == {
        n: v for n, v in vars(messages).items() if n.startswith("EV_")
    }


def test_capability_bits():
    rows = [r for r in table(section("### 5.3"), "bit", "mask", "name", "meaning") if r["mask"]]
    assert {r["name"]: _int(r["mask"]) for r in rows} == {
        n: v for n, v in vars(messages).items() if n.startswith("CAP_")
    }


# ---- CONFIG_GET -----------------------------------------------------------------------------------
def _config_table() -> dict:
    rows = table(section("#### 6.7.1"), "key", "default", "range", "meaning")
    out = {}
    for r in rows:
        low, high = (_int(x) for x in r["range"].split("…"))
        out[_bare(r["key"])] = (_int(r["default"]), low, high)
    return out


def test_the_config_table_is_the_firmware_defaults():
    assert _config_table() == firmware_config.DEFAULTS


def test_the_jurisdiction_table_is_the_firmware_presets():
    rows = table(section("#### 6.7.1"), "jurisdiction", "differs from the defaults")
    spec = {}
    for r in rows:
        values = {}
        for key, value in re.findall(r"`(\w+)` (\d+)", r["differs from the defaults"]):
            values[key] = int(value)
        spec[_bare(r["jurisdiction"])] = values
    assert spec == firmware_config.JURISDICTIONS


@pytest.mark.parametrize("jurisdiction", sorted(firmware_config.JURISDICTIONS))
def test_config_get_over_the_wire_completed_by_the_spec_table_is_the_device_configuration(jurisdiction):
    overrides = {"recall_s": 3 * 86400} if jurisdiction == "default" else {}
    rig = Rig(config=firmware_config.Config(jurisdiction, **overrides))
    reply = json.loads(Host(rig).ok(messages.CONFIG_GET)["config"])
    assert reply["jurisdiction"] == jurisdiction and "more" not in reply
    full = {key: spec[0] for key, spec in _config_table().items()}  # a missing key: its default
    for key, value in reply.items():
        if key != "jurisdiction":
            assert key in full and value != full[key], key  # only what differs is sent
            full[key] = value
    full["jurisdiction"] = jurisdiction
    assert full == rig.config.as_dict()


# ---- keypad -------------------------------------------------------------------------------------------
def _damm_table() -> list[list[int]]:
    rows = table(section("### 9.8"), "interim \\ digit")
    assert [_int(r["interim \\ digit"].strip("*")) for r in rows] == list(range(10))
    return [[int(r[str(d)]) for d in range(10)] for r in rows]


def test_the_damm_table_is_the_implementation():
    assert _damm_table() == [list(row) for row in keycodes._DAMM]


def _damm(digits: str, spec_table) -> int:
    interim = 0
    for ch in digits:
        interim = spec_table[interim][int(ch)]
    return interim


def test_the_spec_damm_table_checks_the_vectors_requests_and_catches_every_single_error_and_swap():
    spec_table = _damm_table()
    for row in gen_vectors.keypad_examples():
        digits = row["request"].replace(" ", "")
        assert _damm(digits, spec_table) == 0
        assert _damm(digits[:11], spec_table) == int(digits[11])
        for i in range(12):
            for d in "0123456789":
                if d != digits[i]:
                    assert _damm(digits[:i] + d + digits[i + 1 :], spec_table) != 0
            if i < 11 and digits[i] != digits[i + 1]:
                swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
                assert _damm(swapped, spec_table) != 0


def test_the_keypad_input_strings_are_the_implementations():
    text = "\n".join(section("### 9.8"))
    assert '"LCI-777 request" 00 ‖ serial 00 ‖ counter as decimal text 00 ‖ nonce' in text
    assert '"LCI-777 code v1" 00 ‖ serial 00 ‖ action name 00 ‖ R' in text
    assert keycodes.DOMAIN == b"LCI-777 code v1"
    for row in gen_vectors.keypad_examples():  # the worked example's bytes are in the text
        for name in ("mix_input", "mac_input"):  # every byte, in lines of 18 as printed
            raw = bytes.fromhex(row[name])
            dump = "\n".join("  " + " ".join(f"{b:02x}" for b in raw[i : i + 18]) for i in range(0, len(raw), 18))
            assert f"{name} ({len(raw)} bytes)" in text and dump + "\n" in text, (row["action"], name)
        assert row["mac"] in text and row["answer"] in text and row["request"] in text
    assert f"{keycodes.CODE_DIGITS} digits" in text
    assert "1 … 16 digits" in text and keycodes.REQUEST_DIGITS == 12


# ---- event-log records --------------------------------------------------------------------------------
def test_the_record_layout_table_is_the_record_format():
    rows = table(section("### 8.1"), "offset", "size", "field", "meaning")
    head = [(_int(r["offset"]), _int(r["size"]), _bare(r["field"])) for r in rows[:9]]
    assert head == [(0, 1, "format"), (1, 4, "index"), (5, 4, "time"), (9, 1, "kind"), (10, 1, "compliance"),
                    (11, 1, "session"), (12, 2, "brac"), (14, 4, "value"), (18, 8, "prev")]
    assert [(r["offset"], r["size"]) for r in rows[9:]] == [("26", "n"), ("26 + n", "4")]
    assert struct.calcsize(logrecord._HEAD) == logrecord.HEAD_SIZE == 26
    assert [_bare(r["field"]) for r in rows][-2:] == ["detail", "crc"]
    assert "**1**" in rows[0]["meaning"] and logrecord.FORMAT == 1
    text = "\n".join(section("### 8.1"))
    assert f"0 to {logrecord.MAX_DETAIL} bytes" in text and f"30 to {logrecord.MAX_RECORD} bytes" in text


def test_the_record_type_table_is_the_kind_names():
    rows = table(section("### 8.4"), "number", "name", "meaning", "brac / value / detail")
    assert {_int(r["number"]): r["name"] for r in rows} == {number: logrecord.kind_name(number) for number in logrecord.KINDS}


def test_the_reserve_kinds_are_the_implementations():
    text = " ".join(section("### 8.4"))
    listed = text.split("(the reserve kinds):", 1)[1].split(".", 1)[0]
    names = re.findall(r"`(\w+)`", listed)
    assert names == [logrecord.kind_name(number) for number in sorted(logrecord.KINDS) if logrecord.KINDS[number]]


def test_the_worked_record_is_the_vectors_record():
    text = re.sub(r"\s+", "", "\n".join(section("### 8.3")))
    for row in gen_vectors.record_chain()["rows"]:
        assert row["record"] in text
    assert gen_vectors.record_chain()["head_hash"] in text


# ---- tokens -----------------------------------------------------------------------------------------------
def test_the_action_table_is_the_token_arguments():
    rows = table(section("### 9.4"), "code", "action", "scope", "arguments (all required, nothing else)", "session-bound")
    assert {_int(r["code"]): _bare(r["action"]) for r in rows} == {
        i: a for i, a in enumerate(messages.ACTIONS) if a != "none"
    }
    for r in rows:
        action = _bare(r["action"])
        assert r["scope"] == tokens.ACTION_SCOPES[action], action
        spec_args = re.findall(r"`(\w+)` (uint|text|cause|one of)", r["arguments (all required, nothing else)"])
        kinds = [(n, "order" if k == "one of" else k) for n, k in spec_args]
        assert kinds == tokens.arguments(action), action
        assert ("must be" in r["session-bound"]) == (action in tokens.SESSION_BOUND), action


def test_the_directive_cause_table_is_the_closed_set():
    rows = table(section("### 9.4"), "cause", "STATUS `causes` bit", "set by", "cleared by")
    assert tuple(_bare(r["cause"]) for r in rows) == tokens.DIRECTIVE_CAUSES
    for r in rows:
        assert _int(r["STATUS `causes` bit"]) == 1 << messages.CAUSES.index(_bare(r["cause"]))


def test_a_directive_with_a_cause_outside_the_table_is_refused_and_changes_nothing():
    rig = Rig()
    host = Host(rig)
    before = rig.device._state()
    for action in ("recall", "lockout", "clear"):
        for cause in ("tamper", "service_due", "UNPAID_BALANCE"):
            # a well-numbered directive (seq), so only its cause is wrong
            args = {"cause": cause, "days": 7, "seq": 1} if action == "recall" else {"cause": cause, "seq": 1}
            assert host.nack(messages.TOKEN, token=mint(action, args, key="billing")) == errors.BAD_ARGUMENT
    assert rig.device._state() == before


def test_scopes():
    text = re.sub(r"\s+", " ", "\n".join(section("### 9.2")))
    for i, name in enumerate(tokens.SCOPES):
        assert f"`{name}` (bit {i}, 0x{1 << i:02x})" in text


# ---- NACK precedence ------------------------------------------------------------------------------
def _precedence() -> dict[str, list[tuple[int, str]]]:
    rows = table(section("### 10.1"), "message", "#", "NACK", "refused when")
    out: dict = {}
    current = None
    for r in rows:
        if r["message"] != "—":
            current = r["message"]
            out[current] = []
        out[current].append((int(r["#"]), r["NACK"]))
    return out


def test_the_precedence_table_names_real_codes_in_order():
    names = {n for n, v in vars(errors).items() if n.isupper() and isinstance(v, int)}
    for message, checks in _precedence().items():
        assert message in {messages.entry(t)[0].upper() for t in messages.CATALOGUE}, message
        assert [n for n, _ in checks] == list(range(1, len(checks) + 1)), message
        for _n, code in checks:
            assert code in names or code == "(section 9.6)", (message, code)


def test_every_nack_a_message_section_names_is_in_its_precedence_list():
    precedence = _precedence()
    for message in ("CODE_REQUEST", "CODE_ENTER", "CALIBRATE", "BENCH", "PROVISION"):
        type_ = next(t for t in messages.CATALOGUE if messages.entry(t)[0].upper() == message)
        heading = next(line for line in LINES if re.match(rf"^### 6\.\d+ {message} \(0x{type_:02x}", line))
        text = " ".join(section(heading.split("(")[0].strip()))
        nacks = text[text.index("NACKs") :]
        named = set(re.findall(r"\b([A-Z][A-Z_]{4,})\b", nacks)) & set(errors.__dict__)
        listed = {code for _n, code in precedence[message]}
        listed |= {"NOT_PROVISIONED"} if message == "PROVISION" else set()
        assert named <= listed | {"CAP_BENCH"}, (message, named - listed)


def _state(rig):
    return (rig.device._state(), rig.compliance, rig.session)


def test_code_enter_precedence_on_the_device():
    """Two failing checks at once: the earlier one in the table answers (through frames)."""
    order = [code for _n, code in _precedence()["CODE_ENTER"]]
    rig = Rig()
    host = Host(rig)
    # a malformed code with no pending request: BAD_ARGUMENT before NO_CODE_REQUEST
    assert order.index("BAD_ARGUMENT") < order.index("NO_CODE_REQUEST")
    assert host.nack(messages.CODE_ENTER, code="12a") == errors.BAD_ARGUMENT
    assert host.nack(messages.CODE_ENTER, code="12345678") == errors.NO_CODE_REQUEST
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    host.ok(messages.CODE_REQUEST, action=1)
    for _ in range(rig.config.code_free_tries + 1):
        host.nack(messages.CODE_ENTER, code="00000000")
    # a malformed code during the back-off: BAD_ARGUMENT before CODE_BACKOFF
    assert order.index("BAD_ARGUMENT") < order.index("CODE_BACKOFF") < order.index("BAD_CODE")
    before = _state(rig)
    assert host.nack(messages.CODE_ENTER, code="--") == errors.BAD_ARGUMENT
    assert host.nack(messages.CODE_ENTER, code="00000000") == errors.CODE_BACKOFF
    assert _state(rig)[1:] == before[1:]


def test_bench_and_calibrate_precedence_on_the_device():
    bench = [code for _n, code in _precedence()["BENCH"]]
    assert bench == ["NOT_SUPPORTED", "NOT_SUPPORTED", "BAD_ARGUMENT"]
    rig = Rig(caps=messages.CAP_BENCH)  # no power cut
    host = Host(rig)
    # a power cut with bad arguments and no CAP_POWER_CUT: NOT_SUPPORTED first
    assert host.nack(messages.BENCH, input=messages.BENCH_POWER_CUT, a=7, b=1, c=1) == errors.NOT_SUPPORTED
    assert host.nack(messages.BENCH, input=messages.BENCH_IGNITION, a=1, b=1, c=0) == errors.BAD_ARGUMENT
    cal = [code for _n, code in _precedence()["CALIBRATE"]]
    assert cal.index("NOT_IN_SERVICE") < cal.index("BAD_ARGUMENT") < cal.index("CAL_SEQUENCE") < cal.index(
        "REFERENCE_OUT_OF_RANGE")
    assert host.nack(messages.CALIBRATE, step=9, reference=1) == errors.NOT_IN_SERVICE
    host.hello()
    host.ok(messages.TOKEN, token=mint("service", {}, nonce=rig.device.link.nonce))
    assert host.nack(messages.CALIBRATE, step=9, reference=1) == errors.BAD_ARGUMENT
    assert host.nack(messages.CALIBRATE, step=messages.CAL_CHECK, reference=1) == errors.CAL_SEQUENCE
    assert host.nack(messages.CALIBRATE, step=messages.CAL_AS_FOUND, reference=1) == errors.REFERENCE_OUT_OF_RANGE


def test_code_request_precedence_on_the_device():
    order = [code for _n, code in _precedence()["CODE_REQUEST"]]
    assert order.index("BAD_ARGUMENT") < order.index("REMOVED") < order.index("NOT_PERMITTED")
    rig = Rig(install=False)
    host = Host(rig)
    assert host.nack(messages.CODE_REQUEST, action=2) == errors.BAD_ARGUMENT
    assert host.nack(messages.CODE_REQUEST, action=1) == errors.REMOVED
    rig.work_order("installation")
    assert host.nack(messages.CODE_REQUEST, action=1) == errors.NOT_PERMITTED


# ---- the wire rules the device announces ------------------------------------------------------------
def test_appendix_b_constants():
    rows = {r["name"]: r["value"] for r in table(section("## Appendix B"), "name", "value")}
    assert _int(rows["protocol version"]) == framing.VERSION
    assert _int(rows["header length"]) == framing.HEADER_LEN
    assert _int(rows["CRC length"]) == framing.CRC_LEN
    assert _int(rows["MAX_PAYLOAD"]) == framing.MAX_PAYLOAD
    assert _int(rows["maximum body"]) == framing.MAX_BODY
    assert _int(rows["maximum stuffed body"]) == framing.MAX_STUFFED
    assert _int(rows["maximum frame on the wire"]) == framing.MAX_STUFFED + 1
    assert _int(rows["reply cache entries"].split(",")[0]) == dedupe.CAPACITY
    assert "SHA-256" in rows["reply cache entries"]
    window = rows["maximum log window"]
    assert _int(window.split()[0]) == endpoint.MAX_WINDOW
    assert f"announces {handler.LOG_WINDOW}" in window


def test_the_golden_vectors_are_what_the_generator_builds():
    assert json.loads((PROTOCOL / "vectors.json").read_text()) == gen_vectors.build()


def test_token_precedence_on_the_device():
    """TOKEN: SUPERSEDED before an argument out of range, BAD_ARGUMENT before NOT_PERMITTED,
    as the table orders them (through frames; nothing changes)."""
    order = [code for _n, code in _precedence()["TOKEN"]]
    at = {code: i for i, code in enumerate(order)}  # the last row naming each code
    assert at["REPLAYED"] < at["NOT_IN_SERVICE"] < at["SUPERSEDED"] < at["BAD_ARGUMENT"]
    unlock_refused = order.index("NOT_PERMITTED", at["BAD_ARGUMENT"])
    assert at["BAD_ARGUMENT"] < unlock_refused < at["OVERRIDE_LIMIT"] < at["OUT_OF_SCOPE"]
    rig = Rig()
    host = Host(rig)
    rig.token("recall", {"cause": "unpaid_balance", "days": 7}, key="billing")
    last = rig.device.directive_seq
    before = _state(rig)
    # an old recall with days out of range: SUPERSEDED; a new one: BAD_ARGUMENT
    old = {"cause": "unpaid_balance", "days": 91, "seq": last}
    assert host.nack(messages.TOKEN, token=mint("recall", old, key="billing")) == errors.SUPERSEDED
    new = {"cause": "unpaid_balance", "days": 91, "seq": last + 1}
    assert host.nack(messages.TOKEN, token=mint("recall", new, key="billing")) == errors.BAD_ARGUMENT
    # not locked out, seconds out of range: BAD_ARGUMENT; in range: NOT_PERMITTED
    assert host.nack(messages.TOKEN, token=mint("unlock", {"seconds": 401 * 86400})) == errors.BAD_ARGUMENT
    assert host.nack(messages.TOKEN, token=mint("unlock", {"seconds": 3600})) == errors.NOT_PERMITTED
    assert _state(rig)[1:] == before[1:]
