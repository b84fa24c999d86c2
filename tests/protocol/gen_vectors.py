"""Writes protocol/vectors.json, the golden vectors both runtimes check (run by hand).

    .venv/bin/python -m tests.protocol.gen_vectors

The file is normative once checked in: a change to the encoder that alters any byte
fails the tests of both runtimes until the vectors (and SPEC.md) are deliberately
regenerated. COBS vectors are the published examples (Cheshire & Baker; Wikipedia's
table), not our encoder's output.
"""

from __future__ import annotations

import json
from pathlib import Path

from protocol import cobs, errors, framing, keycodes, logrecord, messages

OUT = Path(__file__).resolve().parents[2] / "protocol" / "vectors.json"

COBS_EXAMPLES = [
    ("empty", "", "01"),
    ("one zero", "00", "0101"),
    ("two zeros", "0000", "010101"),
    ("zeros around a byte", "001100", "01021101"),
    ("zero inside", "11220033", "0311220233"),
    ("no zero", "11223344", "0511223344"),
    ("trailing zeros", "11000000", "0211010101"),
    ("254 non-zero bytes", bytes(range(1, 255)).hex(), "ff" + bytes(range(1, 255)).hex()),
    ("zero then 254 non-zero", bytes(range(0, 255)).hex(), "01ff" + bytes(range(1, 255)).hex()),
    ("255 non-zero bytes", bytes(range(1, 256)).hex(), "ff" + bytes(range(1, 255)).hex() + "02ff"),
    ("254 non-zero then zero", bytes(range(2, 256)).hex() + "00", "ff" + bytes(range(2, 256)).hex() + "0101"),
    ("253 non-zero, zero, one", bytes(range(3, 256)).hex() + "0001", "fe" + bytes(range(3, 256)).hex() + "0201"),
]


def hexify(values: dict, layout) -> dict:
    out = {}
    for name, _kind in messages.fields(layout):
        value = values[name]
        out[name] = value.hex() if isinstance(value, bytes) else value
    return out


S = "LCI7-000123"
MESSAGES = [
    ("hello", False, {"proto_min": 1, "proto_max": 1, "host_nonce": bytes(range(8))}),
    ("hello", True, {
        "proto": 1, "serial": S, "firmware": "0.1.0", "board": "sim", "caps": 0x3F,
        "max_payload": 512, "window": 8, "nonce": bytes(range(16, 32)),
    }),
    ("status", False, {}),
    ("status", True, {
        "compliance": 1, "session": 0, "causes": 0x0001, "now": 220_000_000,
        "deadline": 220_604_800, "deadline_left": 604_800, "service_due": 224_000_000,
        "calibration_due": 224_000_000, "hold_left": 0, "override_left": 0, "violations": 0,
        "relay": 0, "alarm": 0, "log_count": 1234, "log_free_pct": 87,
        "line1": "SERVICE DUE", "line2": "IN 7 DAYS",
    }),
    ("log_info", False, {}),
    ("log_info", True, {"first": 0, "count": 1234, "capacity": 8192, "free_pct": 87,
                        "head_hash": bytes.fromhex("0123456789abcdef")}),
    ("log_read", False, {"start": 100, "count": 50, "window": 8}),
    ("log_read", True, {"first": 100, "n": 2,
                        "records": messages.pack_records([b"\x01\x02\x03", b"\x04\x05"])}),
    ("log_ack", False, {"next": 102}),
    ("provision", False, {"serial": S, "root_key": bytes(32), "device_secret": bytes(range(32))}),
    ("provision", True, {"serial": S}),
    ("config_get", False, {}),
    ("config_get", True, {"config": b'{"set_point":200}'}),
    ("token", False, {"token": bytes.fromhex("01020304")}),
    ("token", True, {"action": 1, "detail": "lockout cleared"}),
    ("code_request", False, {"action": 1}),
    ("code_request", True, {"request": "1042 6219 0466"}),
    ("code_enter", False, {"code": "83920174"}),
    ("code_enter", True, {"action": 1, "until": 220_014_400}),
    ("calibrate", False, {"step": 0, "reference": 400}),
    ("calibrate", True, {"step": 0, "measured": 412, "passed": 1, "detail": "as found"}),
    ("ping", False, {"data": b"abc"}),
    ("ping", True, {"data": b"abc"}),
    ("bench", False, {"input": 2, "a": 250, "b": 1500, "c": 345}),
    ("bench", True, {"compliance": 0, "session": 2}),
]

BY_NAME = {messages.entry(t)[0]: t for t in messages.CATALOGUE}


def build() -> dict:
    vectors: dict = {"cobs": [{"name": n, "data": d, "encoded": e} for n, d, e in COBS_EXAMPLES]}
    msgs = []
    frames = []
    for seq, (name, is_reply, values) in enumerate(MESSAGES, start=1):
        type_ = BY_NAME[name]
        layout = messages.reply_layout(type_) if is_reply else messages.request_layout(type_)
        payload = messages.encode(layout, values)
        wire_type = type_ | messages.REPLY if is_reply else type_
        flags = framing.F_RESPONSE if is_reply else 0
        wire = framing.encode(framing.Frame(wire_type, payload, seq=seq, flags=flags))
        msgs.append({
            "name": name, "reply": is_reply, "type": wire_type, "fields": hexify(values, layout),
            "payload": payload.hex(),
        })
        frames.append({"name": name + (" reply" if is_reply else ""), "type": wire_type,
                       "flags": flags, "seq": seq, "payload": payload.hex(), "wire": wire.hex()})
    event = {"kind": messages.EV_STATE, "compliance": 2, "session": 0, "time": 220_604_800,
             "detail": "recall expired"}
    payload = messages.encode(messages.EVENT_LAYOUT, event)
    frames.append({"name": "event", "type": messages.EVENT, "flags": framing.F_EVENT, "seq": 7,
                   "payload": payload.hex(),
                   "wire": framing.encode(framing.Frame(messages.EVENT, payload, 7,
                                                        framing.F_EVENT)).hex()})
    msgs.append({"name": "event", "reply": False, "type": messages.EVENT,
                 "fields": event, "payload": payload.hex()})
    nack = {"code": errors.EXPIRED, "request_type": messages.TOKEN, "detail": "expired 3600 s ago"}
    payload = messages.encode(messages.NACK_LAYOUT, nack)
    frames.append({"name": "nack", "type": messages.NACK, "flags": framing.F_RESPONSE, "seq": 14,
                   "payload": payload.hex(),
                   "wire": framing.encode(framing.Frame(messages.NACK, payload, 14,
                                                        framing.F_RESPONSE)).hex()})
    msgs.append({"name": "nack", "reply": True, "type": messages.NACK,
                 "fields": nack, "payload": payload.hex()})
    big = framing.Frame(messages.LOG_READ | messages.REPLY, bytes((i * 7 + 1) & 0xFF or 1 for i in range(512)), 9, framing.F_RESPONSE | framing.F_MORE)
    frames.append({"name": "maximum frame", "type": big.type, "flags": big.flags, "seq": 9,
                   "payload": big.payload.hex(), "wire": framing.encode(big).hex()})
    vectors["messages"] = msgs
    vectors["frames"] = frames
    vectors["decoder"] = decoder_table(frames)
    vectors["records"] = record_chain()
    vectors["keypad"] = keypad_examples()
    return vectors


# A log's first three records (SPEC section 8): a boot, a billing lockout's cause, a failed test.
RECORDS = [
    {"index": 0, "time": 220_000_000, "kind": logrecord.BOOT, "brac": None, "compliance": "normal",
     "session": "ignition_off", "value": 0, "detail": "0.1.0"},
    {"index": 1, "time": 220_000_060, "kind": logrecord.CAUSE_SET, "brac": None, "compliance": "normal",
     "session": "ignition_off", "value": 1, "detail": "unpaid_balance directive"},
    {"index": 2, "time": 220_003_600, "kind": logrecord.TEST_FAIL, "brac": 250, "compliance": "early_service_recall",
     "session": "test_requested", "value": 0, "detail": ""},
]


def record_chain() -> dict:
    """Records with their fields, bytes and hashes; the chain's head hash (LOG_INFO head_hash)."""
    prev = logrecord.GENESIS
    rows = []
    for fields in RECORDS:
        raw = logrecord.encode_record(fields["index"], fields["time"], fields["kind"], prev, fields["brac"],
                                     fields["compliance"], fields["session"], fields["value"], fields["detail"])
        decoded = logrecord.decode_record(raw)
        assert decoded["prev"] == prev and decoded["crc_ok"]
        rows.append({"name": "%d %s" % (fields["index"], logrecord.kind_name(fields["kind"])),
                     "fields": dict(fields, kind_name=logrecord.kind_name(fields["kind"]), prev=prev.hex()),
                     "record": raw.hex(), "hash": logrecord.record_hash(raw).hex()})
        prev = logrecord.record_hash(raw)
    records = [bytes.fromhex(r["record"]) for r in rows]
    assert logrecord.verify_chain(records, logrecord.GENESIS, 0, prev) is None
    return {"genesis": logrecord.GENESIS.hex(), "rows": rows, "head_hash": prev.hex()}


def keypad_examples() -> list:
    """Request codes and answers with every intermediate byte string (SPEC section 9.8)."""
    secret = bytes(range(32))
    serial = "LCI-0001"
    counter = 42
    nonce = bytes(range(1, 9))
    out = []
    for action in keycodes.CODE_ACTIONS:
        mix_input = b"LCI-777 request\x00" + serial.encode() + b"\x00" + str(counter).encode() + b"\x00" + nonce
        mix = keycodes.sha256(mix_input).digest()
        request = keycodes.request_code(serial, action, counter, nonce)
        digits = keycodes.normalize(request)
        # a clear code answers one lockout: its directive number N is appended (00 N)
        seq = 1 if action == "clear" else None
        mac_input = keycodes.DOMAIN + b"\x00" + serial.encode() + b"\x00" + action.encode() + b"\x00" + digits.encode()
        if seq is not None:
            mac_input += b"\x00" + str(seq).encode()
        mac = keycodes.hmac_sha256(secret, mac_input)
        value = keycodes.truncate(mac)
        answer = keycodes.answer_code(secret, serial, request, action, seq=seq)
        assert answer == "%08d" % (value % 10**8)
        row = {
            "name": action + " code", "secret": secret.hex(), "serial": serial, "action": action, "counter": counter,
            "nonce": nonce.hex(), "mix_input": mix_input.hex(), "mix_sha256": mix.hex(),
            "request": request, "mac_input": mac_input.hex(), "mac": mac.hex(),
            "offset": mac[31] & 0x0F, "value": value, "answer": answer,
        }
        if seq is not None:
            row["seq"] = seq
        out.append(row)
    return out


def decoder_table(frames) -> list:
    """Malformed and awkward inputs -> what the decoder must output (pw_hdlc style)."""
    ping = bytes.fromhex(next(f["wire"] for f in frames if f["name"] == "ping"))
    status = bytes.fromhex(next(f["wire"] for f in frames if f["name"] == "status"))
    body = cobs.decode(ping[:-1])
    assert body is not None
    bad_crc = bytearray(body)
    bad_crc[-1] ^= 0x01
    bad_len = bytearray(body)
    bad_len[5] += 1  # length field says one byte more than present
    oversize_body = framing.struct.pack("<BBBHH", 1, 0x30, 0, 1, 600) + bytes(600) + bytes(4)
    rows = [
        ("one frame", ping, [ping], {}),
        ("two frames back to back", ping + status, [ping, status], {}),
        ("idle delimiters between frames", b"\x00\x00" + ping + b"\x00" + status, [ping, status], {}),
        ("garbage then a frame", b"\x13\x37\xff\x00" + ping, [ping], {"cobs": 1}),
        ("noise glued to a frame: both lost", b"\x05\x01\x02\x03\x04\x05\x06" + ping, [], {"length": 1}),
        ("truncated frame then a frame", ping[:6] + b"\x00" + ping, [ping], {"cobs": 1}),
        ("bad CRC dropped, next frame kept", cobs.encode(bytes(bad_crc)) + b"\x00" + status, [status], {"crc": 1}),
        ("length field disagrees", cobs.encode(bytes(bad_len)) + b"\x00" + ping, [ping], {"length": 1}),
        ("block cut by a delimiter", b"\x03\x11\x00" + ping, [ping], {"cobs": 1}),
        ("code byte past the end", b"\x09\x11\x22\x00" + ping, [ping], {"cobs": 1}),
        ("oversize run resyncs at delimiter", cobs.encode(oversize_body) + b"\x00" + ping, [ping], {"oversize": 1}),
        ("only delimiters", b"\x00" * 8, [], {}),
        ("frame without its delimiter yet", ping[:-1], [], {}),
    ]
    table = []
    for name, data, expect, drops in rows:
        # sanity: the table must describe what the decoder really does
        decoder = framing.Decoder()
        got = decoder.feed(data)
        want = [framing.parse_body(cobs.decode(w[:-1])) for w in expect]
        assert got == want, name
        actual = {k: v for k, v in decoder.drops.items() if v}
        assert actual == drops, (name, actual)
        table.append({"name": name, "input": data.hex(), "frames": [w.hex() for w in expect],
                      "drops": drops})
    return table


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")
