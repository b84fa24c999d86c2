"""Power cuts at random moments on the real VM: SIGKILL of the unix board, 200 times (`make soak`).

The bundle runs on MicroPython's unix port (host_tools/dev/unix_board.py) with its state on a
littlefs2 image, so a kill lands wherever the firmware is: inside a token check, a log
append, a state file's write-new-then-rename, a littlefs block write. Each round the host
sends a burst of requests that write (ignition, blows, a code request, a billing token)
without waiting for the replies, and cuts the power at a random point of the burst: after a
random number of its replies came (0 to all), and a random moment more. The point is counted
in the board's replies, not in wall time, so a loaded machine moves the cut within the burst,
never out of it. After every restart:
- the lockout the unit was put in is still there (no cut ever clears it);
- every log record the host had downloaded before is still on the unit, byte for byte
  (nothing acknowledged is lost), and the log's hash chain verifies from the genesis
  record to the head hash the unit reports;
- the round's billing token, if answered before the cut, has its record in the log; sent
  again after every cut (as a link server resends a directive it had no answer for), it is
  applied only if it was not before: the log then holds exactly one acceptance of it, the
  record and the effect of a token having survived a cut together or not at all.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from firmware import eventlog
from host_tools import keys, tokens
from host_tools.dev import mpybuild, unix_board
from host_tools.device_client import DeviceClient, brac_units
from host_tools.link import Nack, Transport
from protocol import errors, framing, messages
from tests.hil.target import SPEED, UNIX_HEAP

ROUNDS = int(os.environ.get("LCI_SOAK_ROUNDS", "200"))
SERIAL = "LCI7-SOAK001"
RETRIES = 60  # tries of a request after the first: a last-resort bound on a board that hangs
# a token's life on the board's clock, which runs SPEED times the wall clock: long enough that no
# delay of a loaded machine between minting and sending lets it expire
TOKEN_TTL = 7 * 86400
TOKEN_SEQ = 4  # the burst's billing token
# after the replies waited for, the cut lands within this many seconds more: about the time the
# unit takes over one request of the burst (a token's signature check is the longest)
STEP_S = 0.03


def _frame(type_: int, seq: int, **fields) -> bytes:
    payload = messages.encode(messages.request_layout(type_), fields)
    return framing.encode(framing.Frame(type_, payload, seq))


def _replies_until_cut(transport: Transport, wanted: int, extra_s: float) -> list[framing.Frame]:
    """The burst's replies, read until `wanted` of them came and `extra_s` seconds more passed.
    Waiting for a reply is bounded only against a unit that stopped answering."""
    decoder = framing.Decoder()
    replies: list[framing.Frame] = []
    give_up = time.monotonic() + RETRIES * 0.5
    while len(replies) < wanted:
        assert time.monotonic() < give_up, f"the unit answered {len(replies)} of the burst's requests"
        replies += [f for f in decoder.feed(transport.read(0.25)) if f.is_response]
    cut_at = time.monotonic() + extra_s
    while (left := cut_at - time.monotonic()) > 0:
        replies += [f for f in decoder.feed(transport.read(left)) if f.is_response]
    return replies


def _acceptances(records: list[bytes], start: int) -> int:
    """TOKEN_ACCEPTED records from index `start` on."""
    return sum(1 for r in records[start:] if eventlog.decode_record(r)["kind"] == eventlog.TOKEN_ACCEPTED)


def _read_log(client: DeviceClient, start: int = 0) -> tuple[dict, list[bytes]]:
    """LOG_INFO and the records from index `start` (the first on the unit by default) on."""
    info = client.log_info()
    start = max(start, info["first"])
    records: list[bytes] = []
    for _first, page in client.read_log(start, info["first"] + info["count"] - start):
        records.extend(page)
    return info, records


@pytest.mark.soak
def test_sigkill_at_random_moments_never_clears_a_lockout_nor_loses_a_record(tmp_path):
    rng = random.Random(777)
    report = mpybuild.build(tmp_path / "mpy")
    assert not report["failures"], report["failures"]
    keys.keygen(tmp_path / "keys")
    root = keys.load_root_key(tmp_path / "keys" / keys.ROOT_KEY_FILE)
    master = keys.load_master_secret(tmp_path / "keys" / keys.MASTER_SECRET_FILE)
    with unix_board.UnixBoard(tmp_path / "mpy", flash_image=tmp_path / "flash.img", heap=UNIX_HEAP,
                              rate=SPEED, romfs=True) as board:
        assert board.pty_path is not None

        def connect() -> DeviceClient:
            # a request unanswered for 0.5 s is resent (the reply cache answers a repeat); the
            # budget of tries only bounds a board that stopped answering, however slow the machine
            client = DeviceClient.open(board.pty_path, timeout=0.5, retries=RETRIES)
            client.hello()
            return client

        def mint(client: DeviceClient, action: str, args: dict) -> bytes:
            return tokens.mint(root, SERIAL, action, args, now=client.status()["now"], ttl=TOKEN_TTL)

        client = connect()
        client.provision(**keys.provision_fields(SERIAL, root.public_key, master))
        client.close()
        client = connect()
        client.submit_token(mint(client, "work_order", {"order": "installation", "id": "WO-SOAK", "vehicle": "VIN"}))
        client.submit_token(mint(client, "lockout", {"cause": "unpaid_balance", "seq": 1}))
        assert client.status()["compliance"] == "lockout"
        seen: dict[int, bytes] = dict(enumerate(_read_log(client)[1]))
        answered = 0  # rounds whose token was answered before the cut
        for round_ in range(ROUNDS):
            token = mint(client, "recall", {"cause": "unpaid_balance", "days": 3, "seq": 2 + round_})
            burst = [
                _frame(messages.BENCH, 1, input=messages.BENCH_IGNITION, a=1, b=0, c=0),
                _frame(messages.BENCH, 2, input=messages.BENCH_BLOW, a=rng.choice((0, brac_units(0.04))),
                       b=1800, c=345),
                _frame(messages.CODE_REQUEST, 3, action=messages.ACTIONS.index("unlock")),
                _frame(messages.TOKEN, TOKEN_SEQ, token=token),
                _frame(messages.BENCH, 5, input=messages.BENCH_IGNITION, a=0, b=0, c=0),
            ]
            before = len(seen)  # the log's length before the burst
            client.link.transport.write(b"".join(burst))
            replies = _replies_until_cut(client.link.transport, rng.randint(0, len(burst)),
                                         rng.uniform(0.0, STEP_S))
            token_answered = any(f.seq == TOKEN_SEQ and f.type == messages.TOKEN | messages.REPLY
                                 for f in replies)
            answered += token_answered
            client.close()
            board.power_cut()
            client = connect()
            status = client.status()
            assert status["compliance"] == "lockout", (round_, status)
            info, records = _read_log(client)
            assert info["first"] == 0, info  # the soak stays within the log's capacity
            problem = eventlog.verify_chain(records, prev_hash=eventlog.GENESIS, first_index=0,
                                            head_hash=info["head_hash"])
            assert problem is None, (round_, problem)
            for index, record in seen.items():
                assert index < len(records) and records[index] == record, (round_, index)
            if token_answered:
                assert _acceptances(records, before) == 1, (round_, "an answered token left no record")
            try:
                client.submit_token(token)
            except Nack as nack:
                assert nack.code == errors.ALREADY_APPLIED, (round_, nack)
            records = records[:before] + _read_log(client, before)[1]
            assert _acceptances(records, before) == 1, (round_, "the token's acceptances")
            seen = dict(enumerate(records))
        assert board.boots == ROUNDS + 1
        # the cuts landed on both sides of the token's commit
        assert 0 < answered < ROUNDS, answered
        client.close()
