"""The data link against simulated handsets through real TCP sockets: billing directives
delivered exactly once and acknowledged, logs uploaded and verified, status recorded."""

from __future__ import annotations

import struct
from binascii import crc32

import pytest

from firmware import eventlog
from protocol import framing, messages
from provider.link import store
from provider.link.server import LinkServer
from sim import driving
from sim.uplink import Cut, LossyLink, dial_async

from . import stall
from .rig import DAY, World, run, start_server

SERIAL = "LCI-T-0001"


@pytest.fixture
def world(tmp_path):
    return World(tmp_path, [SERIAL])


class Frames:
    """A tap that watches the frames in one direction and may cut the call at one of them."""

    def __init__(self, direction: str, cut_at_type: int | None = None, cut_inside: bool = False):
        self.direction = direction
        self.cut_at_type = cut_at_type
        self.cut_inside = cut_inside
        self.decoder = framing.Decoder()
        self.seen: list[int] = []
        self.cut = False

    def __call__(self, direction: str, data: bytes):
        if direction != self.direction or self.cut:
            return data
        passed = 0
        for frame_end in _frame_ends(data):
            chunk = data[passed:frame_end]
            frames = self.decoder.feed(chunk)
            for frame in frames:
                self.seen.append(frame.type)
                if frame.type == self.cut_at_type:
                    self.cut = True
                    # the frame is lost whole, or (cut_inside) half of it goes out first
                    return Cut(data[:passed + len(chunk) // 2] if self.cut_inside else data[:passed])
            passed = frame_end
        return data


def _frame_ends(data: bytes):
    start = 0
    while True:
        end = data.find(b"\x00", start)
        if end < 0:
            if start < len(data):
                yield len(data)
            return
        yield end + 1
        start = end + 1


def accepted(world: World, action: str) -> int:
    return sum(1 for detail in world.accepted_tokens(world.sims[SERIAL]) if detail.startswith(action + " "))


def test_a_call_delivers_the_directive_uploads_the_log_and_records_the_status(world):
    recall = world.until_directive(SERIAL, "recall")
    sim = world.sims[SERIAL]

    async def calls():
        server, host, port = await start_server(world)
        first = await dial_async(sim, host, port)
        driving.drive(sim, 30, brac=0)  # new records between the calls
        requests = Frames("down")
        second = await dial_async(sim, host, port, tap=requests)
        await server.close()
        return first, second, requests.seen

    first, second, second_requests = run(calls())
    assert first["ok"] and second["ok"]
    db = world.link_db()
    [delivery] = store.deliveries(db, SERIAL)
    assert (delivery["directive_id"], delivery["status"], delivery["answer"]) == (recall["id"], "delivered", "token")
    assert accepted(world, "recall") == 1
    assert messages.TOKEN not in second_requests  # acknowledged: never sent again
    handset = store.handset(db, SERIAL)
    status = sim.status()
    assert handset["compliance"] == "early_service_recall" == status["compliance"]
    assert handset["deadline"] == status["deadline"] and handset["deadline"] > handset["device_now"]
    assert handset["last_seen"] == world.unix() and handset["sessions"] == 2
    assert handset["last_outcome"] == "ok" and handset["log_problem"] is None
    # every record the handset holds, byte for byte, in order
    assert store.records(db, SERIAL) == world.device_records(sim)


def test_a_reply_lost_mid_delivery_is_resent_and_acknowledged_as_already_applied(world):
    world.until_directive(SERIAL, "recall")
    sim = world.sims[SERIAL]
    lost_reply = Frames("up", cut_at_type=messages.TOKEN | messages.REPLY, cut_inside=True)

    async def calls():
        server, host, port = await start_server(world)
        first = await dial_async(sim, host, port, tap=lost_reply)
        await server.quiet()
        db = world.link_db()
        after_first = store.deliveries(db, SERIAL)
        second = await dial_async(sim, host, port)
        third_requests = Frames("down")
        third = await dial_async(sim, host, port, tap=third_requests)
        await server.close()
        return first, after_first, second, third, third_requests.seen

    first, after_first, second, third, third_requests = run(calls())
    assert not first["ok"] and second["ok"] and third["ok"]
    # the handset applied it, but nobody heard the answer: not delivered yet
    assert [(d["status"], d["attempts"]) for d in after_first] == [("retry", 1)]
    assert accepted(world, "recall") == 1
    [delivery] = store.deliveries(world.link_db(), SERIAL)
    assert delivery["status"] == "delivered"
    assert delivery["answer"] == "already_applied" and delivery["attempts"] == 2
    assert accepted(world, "recall") == 1  # applied once
    assert messages.TOKEN not in third_requests


def test_a_request_lost_on_the_way_is_delivered_at_the_next_call(world):
    world.until_directive(SERIAL, "recall")
    sim = world.sims[SERIAL]
    lost_request = Frames("down", cut_at_type=messages.TOKEN, cut_inside=True)

    async def calls():
        server, host, port = await start_server(world)
        first = await dial_async(sim, host, port, tap=lost_request)
        second = await dial_async(sim, host, port)
        await server.close()
        return first, second

    first, second = run(calls())
    assert not first["ok"] and second["ok"]
    assert accepted(world, "recall") == 1
    [delivery] = store.deliveries(world.link_db(), SERIAL)
    assert (delivery["status"], delivery["answer"], delivery["attempts"]) == ("delivered", "token", 2)


def test_exactly_once_over_a_lossy_link(world):
    """Recall, lockout, and the clear after payment, over calls that break at random bytes."""
    sim = world.sims[SERIAL]
    lossy = LossyLink(seed=3, rate=0.004)
    results = []

    async def call_until_quiet(server, calls: int = 60):
        host, port = server.address
        for _ in range(calls):
            results.append(await dial_async(sim, host, port, tap=lossy))
            await server.quiet()
            if results[-1]["ok"] and not pending(world):
                return

    def pending(world):
        return store.pending(world.link_db(), SERIAL)

    async def story():
        server, host, port = await start_server(world)
        world.until_directive(SERIAL, "recall")
        await call_until_quiet(server)
        world.until_directive(SERIAL, "lockout")
        driving.drive(sim, 20, brac=0)
        await call_until_quiet(server)
        world.engine.set_payment_method(world.refs[SERIAL], "tok_visa")  # charged at once
        world.advance(60)
        world.until_directive(SERIAL, "clear")
        await call_until_quiet(server)
        await server.close()

    run(story())
    assert lossy.cuts >= 3, "the link was not lossy enough to test anything"
    assert sum(1 for r in results if not r["ok"]) == lossy.cuts
    tokens = [d for d in world.directives(SERIAL) if d["delivery"] == "token"]
    assert [d["action"] for d in tokens] == ["recall", "lockout", "clear"]
    deliveries = store.deliveries(world.link_db(), SERIAL)
    assert [(d["directive_id"], d["status"]) for d in deliveries] == [(d["id"], "delivered") for d in tokens]
    for action in ("recall", "lockout", "clear"):
        assert accepted(world, action) == 1, action
    assert sim.status()["compliance"] == "normal"
    assert store.records(world.link_db(), SERIAL) == world.device_records(sim)


class Tamper:
    """A man in the middle that rewrites one record of the log upload (and mends the record's
    CRC and the frame's CRC, so only the hash chain can tell)."""

    def __init__(self, index: int):
        self.index = index
        self.done = False

    def __call__(self, direction: str, data: bytes):
        if direction != "up" or self.done:
            return data
        out = bytearray()
        for frame in framing.Decoder().feed(data):
            if frame.type == messages.LOG_READ | messages.REPLY and not self.done:
                frame = self._rewrite(frame)
            out += framing.encode(frame)
        return bytes(out)

    def _rewrite(self, frame):
        first, n = struct.unpack_from("<IB", frame.payload)
        records = messages.split_records(frame.payload[5:])
        if not first <= self.index < first + n:
            return frame
        record = bytearray(records[self.index - first])
        record[12:14] = struct.pack("<H", 0)  # the BrAC field: a failed test made a clean one
        record[-4:] = struct.pack("<I", crc32(record[:-4]) & 0xFFFFFFFF)
        records[self.index - first] = bytes(record)
        self.done = True
        payload = struct.pack("<IB", first, n) + messages.pack_records(records)
        return framing.Frame(frame.type, payload, seq=frame.seq, flags=frame.flags)


def test_a_tampered_record_is_refused_and_nothing_after_the_last_verified_record_is_stored(world):
    sim = world.sims[SERIAL]

    async def calls():
        server, host, port = await start_server(world)
        await dial_async(sim, host, port)
        held = len(store.records(world.link_db(), SERIAL))
        driving.drive(sim, 30, brac=350)  # a failed start test, then more
        tamper = Tamper(index=held + 2)
        tampered = await dial_async(sim, host, port, tap=tamper)
        await server.quiet()
        after_tamper = store.handset(world.link_db(), SERIAL), len(store.records(world.link_db(), SERIAL))
        clean = await dial_async(sim, host, port)
        await server.close()
        return held, tamper, tampered, after_tamper, clean

    held, tamper, tampered, (handset, count), clean = run(calls())
    assert tamper.done and tampered["ok"]
    assert count == held  # nothing of the tampered upload was stored
    assert handset["log_problem"].startswith(f"chain broken at record {held + 3}")
    assert handset["last_outcome"].startswith("log refused")
    assert handset["log_next"] == held
    # an honest call later uploads the real records, anchored to the last one held
    assert clean["ok"]
    final = store.handset(world.link_db(), SERIAL)
    assert final["log_problem"] is None and final["last_outcome"] == "ok"
    assert store.records(world.link_db(), SERIAL) == world.device_records(sim)


def test_an_expired_directive_is_refused_and_the_next_one_still_delivered(world):
    recall = world.until_directive(SERIAL, "recall")
    lockout = world.until_directive(SERIAL, "lockout")
    ttl_days = world.engine.policy.token_ttl // DAY
    world.advance((ttl_days - 7 + 1) * DAY)  # the recall's token expired; the lockout's has not

    async def calls():
        server, host, port = await start_server(world)
        await dial_async(world.sims[SERIAL], host, port)
        requests = Frames("down")
        await dial_async(world.sims[SERIAL], host, port, tap=requests)
        await server.close()
        return requests.seen

    second_requests = run(calls())
    deliveries = {d["directive_id"]: d for d in store.deliveries(world.link_db(), SERIAL)}
    assert (deliveries[recall["id"]]["status"], deliveries[recall["id"]]["answer"]) == ("refused", "EXPIRED")
    assert deliveries[lockout["id"]]["status"] == "delivered"
    assert messages.TOKEN not in second_requests  # a refusal is final: not retried
    assert accepted(world, "recall") == 0 and accepted(world, "lockout") == 1
    assert store.handset(world.link_db(), SERIAL)["compliance"] == "lockout"


def test_an_unprovisioned_handset_is_hung_up_on(tmp_path):
    from sim.simulator import Simulator

    world = World(tmp_path, [SERIAL])
    blank = Simulator(seed=9, identity={}, start_s=0)
    summaries = []

    async def call():
        server, host, port = await start_server(world, on_session=summaries.append)
        result = await dial_async(blank, host, port)
        await server.close()
        return result

    assert run(call())["ok"]
    assert summaries[0]["outcome"].startswith("unprovisioned handset")
    assert store.handsets(world.link_db()) == []


def test_record_kinds_are_kept_with_the_records(world):
    world.until_directive(SERIAL, "recall")

    async def call():
        server, host, port = await start_server(world)
        await dial_async(world.sims[SERIAL], host, port)
        await server.close()

    run(call())
    db = world.link_db()
    kinds = [r[0] for r in db.execute("SELECT kind FROM link_log WHERE serial = ? ORDER BY idx",
                                      (SERIAL,)).fetchall()]
    assert kinds == [eventlog.decode_record(r)["kind"] for r in world.device_records(world.sims[SERIAL])]
    assert eventlog.TOKEN_ACCEPTED in kinds


def test_a_token_the_outbox_mangled_is_refused_and_the_next_directive_still_delivered(world):
    recall = world.until_directive(SERIAL, "recall")
    lockout = world.until_directive(SERIAL, "lockout")
    world.conn.execute("UPDATE directive SET token = 'not hex' WHERE id = ?", (recall["id"],))

    async def call():
        server, host, port = await start_server(world)
        result = await dial_async(world.sims[SERIAL], host, port)
        await server.close()
        return result

    assert run(call())["ok"]
    deliveries = {d["directive_id"]: d for d in store.deliveries(world.link_db(), SERIAL)}
    assert (deliveries[recall["id"]]["status"], deliveries[recall["id"]]["answer"]) == ("refused", "MALFORMED_TOKEN")
    assert deliveries[lockout["id"]]["status"] == "delivered"
    assert accepted(world, "lockout") == 1


def test_a_database_failure_ends_that_call_only(world, capfd):
    world.until_directive(SERIAL, "recall")
    summaries = []

    async def calls():
        server, host, port = await start_server(world, on_session=summaries.append)
        world.conn.execute("ALTER TABLE link_log RENAME TO link_log_away")
        broken = await dial_async(world.sims[SERIAL], host, port)
        await server.quiet()
        world.conn.execute("ALTER TABLE link_log_away RENAME TO link_log")
        healed = await dial_async(world.sims[SERIAL], host, port)
        await server.quiet()
        await server.close()
        return broken, healed

    broken, healed = run(calls())
    assert summaries[0]["outcome"].startswith("incomplete: OperationalError")
    assert "call from LCI-T-0001 failed" in capfd.readouterr().err
    assert healed["ok"] and summaries[1]["outcome"] == "ok"
    # the first call's TOKEN was acknowledged and recorded before the database failed
    [delivery] = store.deliveries(world.link_db(), SERIAL)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert store.records(world.link_db(), SERIAL) == world.device_records(world.sims[SERIAL])


class DropFrame:
    """A tap that loses one frame of a type in one direction, the connection staying up (a
    corrupted frame the receiver's CRC check throws away)."""

    def __init__(self, direction: str, frame_type: int):
        self.direction = direction
        self.frame_type = frame_type
        self.dropped = False

    def __call__(self, direction: str, data: bytes):
        if direction != self.direction or self.dropped:
            return data
        out = bytearray()
        for frame in framing.Decoder().feed(data):
            if frame.type == self.frame_type and not self.dropped:
                self.dropped = True
                continue
            out += framing.encode(frame)
        return bytes(out)


def test_a_lost_reply_on_a_live_connection_is_answered_from_the_handsets_reply_cache(world):
    """The server resends the identical TOKEN after its timeout; the handset answers from its
    reply cache (SPEC 4.5) without applying the token again."""
    world.until_directive(SERIAL, "recall")
    lost = DropFrame("up", messages.TOKEN | messages.REPLY)
    summaries = []

    async def call():
        server, host, port = await start_server(world, timeout=0.05, slow_timeout=0.05, retries=4,
                                                on_session=summaries.append)
        result = await dial_async(world.sims[SERIAL], host, port, tap=lost)
        await server.close()
        return result

    assert run(call())["ok"] and lost.dropped
    assert summaries[0]["retransmissions"] >= 1
    [delivery] = store.deliveries(world.link_db(), SERIAL)
    assert (delivery["status"], delivery["answer"], delivery["attempts"]) == ("delivered", "token", 1)
    assert accepted(world, "recall") == 1


def test_log_info_and_status_go_out_together_and_only_the_unanswered_one_is_resent(world):
    """LOG_INFO and STATUS are asked in one write (two seqs outstanding, SPEC 4.6); the STATUS
    reply lost, the link resends STATUS alone after its timeout and the call ends complete."""
    world.until_directive(SERIAL, "recall")
    sim = world.sims[SERIAL]
    lost = DropFrame("up", messages.STATUS | messages.REPLY)
    writes: list[list[int]] = []

    def tap(direction: str, data: bytes):
        if direction == "down":
            writes.append([frame.type for frame in framing.Decoder().feed(data)])
        return lost(direction, data)

    async def call():
        server, host, port = await start_server(world, timeout=0.05, slow_timeout=0.05, retries=4)
        result = await dial_async(sim, host, port, tap=tap)
        await server.close()
        return result

    assert run(call())["ok"] and lost.dropped
    sent = [kind for write in writes for kind in write]
    assert [messages.LOG_INFO, messages.STATUS] in writes
    assert sent.count(messages.LOG_INFO) == 1 and sent.count(messages.STATUS) == 2
    handset = store.handset(world.link_db(), SERIAL)
    assert handset["last_outcome"] == "ok" and handset["compliance"] == sim.status()["compliance"]
    assert store.records(world.link_db(), SERIAL) == world.device_records(sim)


def test_a_stalled_call_without_time_limits_fails_instead_of_hanging(world):
    """With no time limit on either side (the fleet's setting), a TOKEN reply lost on a live
    connection leaves both waiting for each other (nothing resends it): the loop goes idle and
    the run fails, naming where the tasks wait, instead of hanging."""
    world.until_directive(SERIAL, "recall")
    sim = world.sims[SERIAL]
    lost = DropFrame("up", messages.TOKEN | messages.REPLY)

    async def call():
        server = LinkServer(world.db_path, clock=world.unix, timeout=None, slow_timeout=None,
                            session_timeout=None)
        host, port = await server.start("127.0.0.1", 0)
        try:
            await dial_async(sim, host, port, timeout=None, tap=lost)
        finally:
            await server.close()

    with pytest.raises(stall.Stalled, match=r"_frame \(host.py:\d+\).*dial_async \(uplink.py:\d+\)"):
        stall.run(call(), idle_limit=1.0)
    assert lost.dropped and accepted(world, "recall") == 1
    assert [d["status"] for d in store.deliveries(world.link_db(), SERIAL)] != ["delivered"]
