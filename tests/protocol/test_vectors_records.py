"""The event-log record and keypad vectors of protocol/vectors.json, byte by byte (both
runtimes): what SPEC.md sections 8 and 9.8 promise a host can compute from the spec alone."""

from hashlib import sha256

from protocol import keycodes, logrecord
from tests.dualtest import check_rows
from tests.protocol.golden import unhex, vectors


def _rows():
    return vectors()["records"]["rows"]


def test_every_record_vector_encodes_and_decodes_byte_by_byte():
    rows = _rows()
    assert unhex(vectors()["records"]["genesis"]) == logrecord.GENESIS
    assert unhex(rows[0]["fields"]["prev"]) == logrecord.GENESIS
    for i in range(1, len(rows)):  # each row's prev is the row before's hash
        assert unhex(rows[i]["fields"]["prev"]) == unhex(rows[i - 1]["hash"]), rows[i]["name"]
    assert unhex(rows[-1]["hash"]) == unhex(vectors()["records"]["head_hash"])

    def check(row):
        f = row["fields"]
        raw = unhex(row["record"])
        prev = unhex(f["prev"])
        built = logrecord.encode_record(
            f["index"], f["time"], f["kind"], prev, f["brac"], f["compliance"], f["session"], f["value"], f["detail"]
        )
        assert built == raw, "encode"
        decoded = logrecord.decode_record(raw)
        for name in ("index", "time", "kind", "kind_name", "compliance", "session", "brac", "value", "detail"):
            assert decoded[name] == f[name], name
        assert decoded["crc_ok"] and decoded["prev"] == prev, "crc / prev"
        assert logrecord.record_hash(raw) == unhex(row["hash"]) == sha256(raw).digest()[:8], "hash"

    check_rows(rows, check)


def test_the_record_chain_verifies_and_any_change_breaks_it():
    records = [unhex(row["record"]) for row in _rows()]
    head = unhex(vectors()["records"]["head_hash"])
    assert logrecord.verify_chain(records, logrecord.GENESIS, 0, head) is None
    for i in range(len(records)):
        for at in range(len(records[i])):
            changed = bytearray(records[i])
            changed[at] ^= 0x01
            broken = records[:i] + [bytes(changed)] + records[i + 1 :]
            assert logrecord.verify_chain(broken, logrecord.GENESIS, 0, head) is not None, (i, at)
    assert logrecord.verify_chain(records[:-1], logrecord.GENESIS, 0, head) is not None  # a cut tail
    assert logrecord.verify_chain([records[0], records[2]], logrecord.GENESIS, 0, head) is not None


def test_keypad_vectors_byte_by_byte():
    def check(row):
        secret = unhex(row["secret"])
        nonce = unhex(row["nonce"])
        mix_input = unhex(row["mix_input"])
        expected = b"LCI-777 request\x00" + row["serial"].encode() + b"\x00" + str(row["counter"]).encode() + b"\x00" + nonce
        assert mix_input == expected
        assert sha256(mix_input).digest() == unhex(row["mix_sha256"])
        request = keycodes.request_code(row["serial"], row["action"], row["counter"], nonce)
        assert request == row["request"]
        digits = request.replace(" ", "")
        mix = int.from_bytes(unhex(row["mix_sha256"])[:8], "big") % 10000000
        assert digits[4:11] == "%07d" % mix
        assert keycodes.damm(digits) == 0
        mac_input = unhex(row["mac_input"])
        # a clear code answers one lockout: its directive number N follows as 00 N
        seq = row.get("seq")
        assert (seq is not None) == (row["action"] == "clear")
        bound = b"" if seq is None else b"\x00" + str(seq).encode()
        assert mac_input == b"LCI-777 code v1\x00" + row["serial"].encode() + b"\x00" + row["action"].encode() + b"\x00" + digits.encode() + bound
        mac = keycodes.hmac_sha256(secret, mac_input)
        assert mac == unhex(row["mac"])
        assert mac[31] & 0x0F == row["offset"]
        assert keycodes.truncate(mac) == row["value"]
        assert "%08d" % (row["value"] % 100000000) == row["answer"]
        assert keycodes.answer_code(secret, row["serial"], request, row["action"], seq=seq) == row["answer"]

    check_rows(vectors()["keypad"], check)
