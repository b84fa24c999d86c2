"""Message layouts: golden payloads, round trips and refusals (both runtimes)."""

from protocol import messages
from protocol.messages import MessageError
from tests.dualtest import check_rows, raises
from tests.protocol.golden import fields_from_json, unhex, vectors


def _layout(row):
    t = row["type"]
    if t == messages.EVENT:
        return messages.EVENT_LAYOUT
    if t == messages.NACK:
        return messages.NACK_LAYOUT
    return messages.layout_for(t, 0)


def test_golden_payloads_encode_and_decode():
    def check(row):
        layout = _layout(row)
        fields = fields_from_json(row["fields"], layout)
        assert messages.encode(layout, fields) == unhex(row["payload"]), "encode"
        assert messages.decode(layout, unhex(row["payload"])) == fields, "decode"

    check_rows(vectors()["messages"], check)


def test_every_catalogue_entry_has_a_golden_vector():
    seen = set()
    for row in vectors()["messages"]:
        seen.add(row["type"])
    for type_ in messages.CATALOGUE:
        entry = messages.entry(type_)
        assert type_ in seen, entry[0]
        if entry[2] is not None:
            assert type_ | messages.REPLY in seen, entry[0] + " reply"


def _refused(layout, payload):
    raises(MessageError, messages.decode, layout, payload)
    return True


def test_truncated_and_padded_payloads_are_refused():
    def check(row):
        layout = _layout(row)
        payload = unhex(row["payload"])
        pairs = messages.fields(layout)
        if pairs and pairs[-1][1] == "*":
            return  # a trailing rest-field takes any length
        if payload:
            assert _refused(layout, payload[:-1]), "one byte short is accepted"
        assert _refused(layout, payload + b"\x00"), "one byte more is accepted"

    check_rows(vectors()["messages"], check)


def test_out_of_range_values_are_refused_not_truncated():
    layout = [("x", "B")]
    for bad in (256, -1, "7", None):
        raises(MessageError, messages.encode, layout, {"x": bad})
    raises(MessageError, messages.encode, [("n", "16s")], {"n": b"short"})


def test_strings_must_be_utf8():
    assert _refused([("s", "s")], b"\x02\xff\xfe")


def test_names_and_bits():
    assert messages.name_of(messages.HELLO) == "hello"
    assert messages.name_of(messages.HELLO | messages.REPLY) == "hello_reply"
    assert messages.name_of(messages.NACK) == "nack"
    mask = messages.names_to_bits(["tamper", "unpaid_balance"], messages.CAUSES)
    assert messages.bits_to_names(mask, messages.CAUSES) == ["unpaid_balance", "tamper"]


def test_log_records_pack_and_split():
    records = [b"", b"a", bytes(255)]
    assert messages.split_records(messages.pack_records(records)) == records
    raises(MessageError, messages.split_records, b"\x05ab")  # a truncated page
