"""The event log: codec, chain, segments, paging, download mark, full-log policy (both runtimes)."""

import struct
from binascii import crc32

from firmware import eventlog as E
from firmware.ramflash import RamFlash
from protocol import messages
from tests.dualtest import raises
from tests.firmware.powercut_harness import REDUCED, Layout, check_log, every_cut


def _log(flash=None, n=4, segments=3, reserve=2):
    return E.EventLog(flash if flash is not None else RamFlash(), records_per_segment=n,
                      max_segments=segments, reserve=reserve)


def _fill(log, count, start_time=1000, kind=E.START_ATTEMPT):
    out = []
    for i in range(count):
        out.append(log.append(start_time + i, kind, detail="r%d" % i))
    return out


def _all(log):
    return log.records(log.first, log.count, 1 << 30)


# ---- codec ------------------------------------------------------------------------------
def test_record_layout_is_the_documented_one():
    rec = E.encode_record(7, 123456, E.TEST_FAIL, b"ABCDEFGH", brac=412, compliance="lockout",
                          session="temporary_lockout", value=-5, detail="héllo")
    assert len(rec) == E.OVERHEAD + len("héllo".encode())
    assert rec[0] == E.FORMAT
    assert rec[1:5] == b"\x07\x00\x00\x00"
    assert rec[5:9] == (123456).to_bytes(4, "little")
    assert rec[9] == E.TEST_FAIL
    assert rec[10] == messages.COMPLIANCE_STATES.index("lockout")
    assert rec[11] == messages.SESSION_STATES.index("temporary_lockout")
    assert rec[12:14] == (412).to_bytes(2, "little")
    assert rec[14:18] == b"\xfb\xff\xff\xff"
    assert rec[18:26] == b"ABCDEFGH"
    assert rec[26:-4] == "héllo".encode()
    d = E.decode_record(rec)
    assert d["index"] == 7 and d["time"] == 123456 and d["kind"] == E.TEST_FAIL
    assert d["kind_name"] == "test_fail"
    assert d["compliance"] == "lockout" and d["session"] == "temporary_lockout"
    assert d["brac"] == 412 and d["value"] == -5 and d["detail"] == "héllo"
    assert d["prev"] == b"ABCDEFGH" and d["crc_ok"]


def test_missing_fields_decode_as_none():
    d = E.decode_record(E.encode_record(0, 5, E.BOOT, E.GENESIS))
    assert d["brac"] is None and d["compliance"] is None and d["session"] is None
    assert d["detail"] == "" and d["value"] == 0


def test_states_by_number_and_out_of_range_numbers_clamped():
    d = E.decode_record(E.encode_record(0, -4, E.BOOT, E.GENESIS, brac=70000, compliance=2,
                                        session=0, value=1 << 40))
    assert d["time"] == 0 and d["brac"] == E.NO_BRAC - 1
    assert d["compliance"] == "lockout" and d["session"] == "ignition_off"
    assert d["value"] == 0x7FFFFFFF


def test_unknown_kind_or_state_is_refused():
    for bad in ((0, {}), (E.BOOT, {"compliance": "asleep"}), (E.BOOT, {"session": 99})):
        raises(ValueError, E.encode_record, 0, 0, bad[0], E.GENESIS, **bad[1])


def test_detail_is_cut_at_a_character_boundary_and_record_fits_255():
    rec = E.encode_record(0, 0, E.TOKEN_REJECTED, E.GENESIS, detail="é" * 200)
    assert len(rec) <= E.MAX_RECORD
    d = E.decode_record(rec)
    assert d["detail"] == "é" * (E.MAX_DETAIL // 2)
    rec = E.encode_record(0, 0, E.TOKEN_REJECTED, E.GENESIS, detail="x" * 300)
    assert len(rec) == E.MAX_RECORD


def test_crc_flags_any_flipped_byte():
    rec = E.encode_record(3, 99, E.RETEST_PASS, b"12345678", brac=10, detail="ok")
    for i in range(len(rec)):
        bad = bytearray(rec)
        bad[i] ^= 0x40
        bad = bytes(bad)
        assert E.record_problem(bad) is not None, i
    assert E.record_problem(rec) is None


def test_decode_refuses_impossible_sizes():
    for size in (0, 5, E.OVERHEAD - 1, 256):
        raises(E.RecordError, E.decode_record, b"\x01" * size)


def test_kind_table_numbers_and_names_are_unique():
    names = [E.kind_name(number) for number in E.KINDS]
    assert len(set(names)) == len(names) == len(E.NAMES.split())
    for number in E.KINDS:
        reserve = E.KINDS[number]
        assert 0 < number < 256
        assert getattr(E, E.kind_name(number).upper()) == number  # the row defines the kind's constant
        assert reserve in (True, False)
        assert E.is_reserve(number) == reserve
    assert E.kind_name(255) == "unknown_255" and not E.is_reserve(255)


# ---- chain ------------------------------------------------------------------------------
def _chain(count=6):
    log = _log(n=4, segments=4)
    _fill(log, count)
    return log, _all(log)


def test_chain_of_a_whole_log_verifies_with_anchors():
    log, recs = _chain()
    assert E.verify_chain(recs) is None
    assert E.verify_chain(recs, E.GENESIS, 0, log.head_hash) is None
    assert E.decode_record(recs[0])["prev"] == E.GENESIS
    assert E.record_hash(recs[-1]) == log.head_hash


def test_chain_breaks_on_edit_even_with_a_recomputed_crc():
    log, recs = _chain()
    rec = bytearray(recs[2][:-4])
    rec[12] = 0  # lower the BrAC ...
    body = bytes(rec)
    forged = body + struct.pack("<I", crc32(body) & 0xFFFFFFFF)  # ... and fix the CRC
    assert E.record_problem(forged) is None
    tampered = recs[:2] + [forged] + recs[3:]
    assert E.verify_chain(tampered) == (3, "previous-record hash does not match")
    plain = recs[:2] + [recs[2][:-1] + b"\x00"] + recs[3:]
    assert E.verify_chain(plain) == (2, "CRC mismatch")


def test_chain_breaks_on_deletion_reordering_and_wrong_anchor():
    log, recs = _chain()
    assert E.verify_chain(recs[:3] + recs[4:])[0] == 3
    assert E.verify_chain([recs[0], recs[2], recs[1]] + recs[3:])[0] == 1
    assert E.verify_chain(recs[1:], prev_hash=E.GENESIS)[0] == 0
    assert E.verify_chain(recs[1:], first_index=0)[0] == 0
    assert E.verify_chain(recs[1:], prev_hash=E.record_hash(recs[0]), first_index=1) is None
    # a cut-off tail is only visible against the device's head hash
    assert E.verify_chain(recs[:-1]) is None
    assert E.verify_chain(recs[:-1], head_hash=log.head_hash) == (len(recs) - 1,
                                                                   "last record does not match the head hash")


# ---- the log on flash -------------------------------------------------------------------
def test_append_returns_monotonic_indices_and_bounds_follow():
    log = _log(n=4, segments=4)
    assert (log.first, log.count, log.head, log.head_hash) == (0, 0, 0, E.GENESIS)
    assert _fill(log, 9) == list(range(9))
    assert log.bounds() == (0, 9) and log.head == 9
    assert log.capacity == 16


def test_segments_are_files_of_n_records():
    flash = RamFlash()
    log = _log(flash, n=4, segments=4)
    _fill(log, 9)
    segs = [name for name in flash.names() if name.startswith("log-0")]
    assert segs == ["log-00000000", "log-00000001", "log-00000002"]
    data = flash.read("log-00000001")
    pos = 0
    indices = []
    while pos < len(data):
        rec = data[pos + 1 : pos + 1 + data[pos]]
        indices.append(E.record_index(rec))
        pos += 1 + data[pos]
    assert indices == [4, 5, 6, 7]


def test_reopen_restores_everything():
    flash = RamFlash()
    log = _log(flash, n=4, segments=4)
    _fill(log, 10)
    log.mark_downloaded(4)
    again = _log(flash, n=4, segments=4)
    assert (again.first, again.count, again.head_hash, again.mark) == (0, 10, log.head_hash, 4)
    assert _all(again) == _all(log)
    assert again.append(5000, E.BOOT) == 10
    assert E.verify_chain(_all(again), E.GENESIS, 0, again.head_hash) is None


def test_records_respects_count_and_byte_budget_like_a_log_page():
    log = _log(n=4, segments=8)
    for i in range(20):
        log.append(i, E.TOKEN_REJECTED, detail="x" * (i * 7))
    page = log.records(0, 100, messages.LOG_PAGE_BUDGET)
    assert len(messages.pack_records(page)) <= messages.LOG_PAGE_BUDGET
    nxt = log.records(len(page), 1, 1000)[0]
    assert len(messages.pack_records(page)) + 1 + len(nxt) > messages.LOG_PAGE_BUDGET
    assert len(log.records(3, 2, 10000)) == 2
    # pages laid end to end give back the whole log, across segment boundaries
    got = []
    start = 0
    while start < log.head:
        page = log.records(start, 7, messages.LOG_PAGE_BUDGET)
        assert page and messages.split_records(messages.pack_records(page)) == page
        got.extend(page)
        start += len(page)
    assert got == _all(log) and len(got) == 20
    assert E.verify_chain(got, E.GENESIS, 0, log.head_hash) is None


def test_records_outside_the_log_are_empty():
    log = _log()
    _fill(log, 5)
    assert log.records(5, 10, 1000) == []
    assert log.records(-1, 10, 1000) == []
    assert log.records(0, 0, 1000) == []
    assert log.records(0, 10, 10) == []  # not even one record fits
    assert log.read(4) is not None and log.read(5) is None
    assert log.last()["index"] == 4 and _log().last() is None


def test_free_pct_falls_and_ordinary_records_stop_at_the_reserve():
    log = _log(n=4, segments=3, reserve=2)  # capacity 12, 10 ordinary slots
    seen = []
    for i in range(10):
        seen.append(log.free_pct())
        assert log.append(i, E.ENGINE_START) == i
    assert seen == sorted(seen, reverse=True) and seen[0] == 100
    assert log.full() and log.free_pct() == 16
    assert not log.accepting(E.ENGINE_START) and log.accepting(E.COMPLIANCE_CHANGE)
    # refused, counted, and a LOG_FULL record is written once from the reserve
    assert log.append(20, E.ENGINE_START) is None
    assert log.append(21, E.TEST_PASS, brac=0) is None
    assert log.refused == 2
    assert E.decode_record(log.read(10))["kind"] == E.LOG_FULL
    # the reserve still takes what a locked-out device and a service visit need
    assert log.append(22, E.COMPLIANCE_CHANGE, compliance="lockout", detail="log_full") == 11
    assert log.free_pct() == 0
    assert log.append(23, E.SERVICE_OPEN) is None  # 100 %: nothing more, nothing dropped
    assert log.refused == 3
    assert log.first == 0 and log.count == 12
    assert E.verify_chain(_all(log), E.GENESIS, 0, log.head_hash) is None


def test_undownloaded_records_are_never_dropped():
    flash = RamFlash()
    log = _log(flash, n=4, segments=3, reserve=0)
    _fill(log, 12)
    before = _all(log)
    for _ in range(5):
        assert log.append(99, E.SERVICE_OPEN) is None
    assert _all(log) == before and flash.size("log-00000000") > 0


def test_download_mark_frees_whole_segments_lazily():
    flash = RamFlash()
    log = _log(flash, n=4, segments=3, reserve=2)
    _fill(log, 10)
    assert log.mark_downloaded(6) == 6
    assert log.free_pct() == 50  # segment 0 is droppable, segment 1 still holds 6 and 7
    assert log.first == 0  # nothing is dropped before the space is needed
    assert flash.size("log-00000000") > 0
    _fill(log, 2, start_time=2000)  # records 10, 11 fill segment 2
    assert log.first == 0
    assert log.append(3000, E.ENGINE_STOP) == 12  # segment 3 is needed: segment 0 goes
    assert log.first == 4 and flash.size("log-00000000") == -1
    assert E.verify_chain(_all(log), first_index=4, head_hash=log.head_hash) is None
    assert log.mark_downloaded(3) == 6  # a mark never goes back
    raises(ValueError, log.mark_downloaded, 14)  # beyond the head


def test_resumed_record_counts_refusals_after_a_download():
    log = _log(n=4, segments=3, reserve=2)
    _fill(log, 10)
    assert log.append(50, E.TEST_PASS) is None  # LOG_FULL written at 10
    assert log.append(51, E.TEST_PASS) is None
    log.mark_downloaded(11)
    assert log.append(60, E.TEST_PASS, brac=0) == 12
    resumed = E.decode_record(log.read(11))
    assert resumed["kind"] == E.LOG_RESUMED and resumed["value"] == 2
    assert log.refused == 0
    assert E.verify_chain(_all(log), head_hash=log.head_hash) is None


def test_mark_survives_reboot_and_gates_dropping():
    flash = RamFlash()
    log = _log(flash, n=4, segments=3, reserve=0)
    _fill(log, 12)
    log.mark_downloaded(4)
    log = _log(flash, n=4, segments=3, reserve=0)
    assert log.mark == 4
    assert log.append(77, E.BOOT) == 12 and log.first == 4
    assert [log.append(78, E.BOOT) for _ in range(4)] == [13, 14, 15, None]
    assert log.first == 4  # segment 1 was not downloaded: it stays, record 16 waits


def test_torn_tail_is_dropped_on_boot_and_the_log_goes_on():
    flash = RamFlash()
    log = _log(flash, n=4, segments=4)
    _fill(log, 6)
    good = _all(log)
    flash.append("log-00000001", b"\x30" + b"\x01\x06\x00")  # a cut record: 4 of 49 bytes
    log = _log(flash, n=4, segments=4)
    assert log.torn_bytes == 4 and log.count == 6 and _all(log) == good
    assert log.append(9, E.BOOT) == 6
    assert E.verify_chain(_all(log), E.GENESIS, 0, log.head_hash) is None


def test_a_whole_length_torn_record_at_the_end_is_dropped_too():
    # erased flash: the cut record has all its bytes, the ones never written read 0xFF
    flash = RamFlash()
    log = _log(flash, n=4, segments=4)
    _fill(log, 5)
    good = _all(log)
    rec = E.encode_record(5, 77, E.BOOT, log.head_hash)
    torn = bytes((len(rec),)) + rec[:12] + b"\xff" * (len(rec) - 12)
    flash.append("log-00000001", torn)
    log = _log(flash, n=4, segments=4)
    assert log.torn_bytes == len(torn) and log.count == 5 and _all(log) == good
    assert log.damaged == 0 and log.append(78, E.BOOT) == 5


def test_a_bad_record_with_committed_records_after_it_is_kept():
    flash = RamFlash()
    log = _log(flash, n=4, segments=4)
    _fill(log, 4)
    data = bytearray(flash.read("log-00000000"))
    data[3] ^= 0xFF  # rot inside record 0; records 1..3 follow it
    flash.write("log-00000000", bytes(data))
    log = _log(flash, n=4, segments=4)
    assert log.count == 4 and log.damaged == 1 and log.torn_bytes == 0
    recs = _all(log)
    assert E.verify_chain(recs) == (0, "CRC mismatch")
    assert E.verify_chain(recs[1:]) is None


def test_an_empty_newest_segment_is_discarded():
    flash = RamFlash()
    log = _log(flash, n=4, segments=4)
    _fill(log, 4)
    flash.write("log-00000001", b"")
    log = _log(flash, n=4, segments=4)
    assert log.count == 4 and flash.size("log-00000001") == -1
    assert log.append(5, E.BOOT) == 4


def test_other_files_and_leftovers_are_left_alone_or_cleaned():
    flash = RamFlash({"state": b"x", "log-00000000.tmp": b"junk", "logbook": b"y"})
    log = _log(flash)
    assert log.count == 0
    assert flash.names() == ["logbook", "state"]


def test_configuration_limits():
    for kwargs in ({"records_per_segment": 0}, {"max_segments": 1}, {"reserve": 12},
                   {"reserve": -1}):
        args = {"records_per_segment": 4, "max_segments": 3, "reserve": 2}
        args.update(kwargs)
        raises(ValueError, E.EventLog, RamFlash(), **args)
    raises(ValueError, _log().append, 0, 200)  # an unknown kind


def test_a_write_that_failed_is_repaired_before_the_next_append():
    from firmware.ramflash import PowerCut

    flash = RamFlash()
    log = _log(flash, n=4, segments=4)
    _fill(log, 5)
    flash.cut_after(10)  # the flash fails 10 bytes into the next record (a brown-out)
    raises(PowerCut, log.append, 50, E.TAMPER, value=E.TAMPER_SUPPLY_LOW)
    flash.power_on()  # the same object carries on, no reboot
    assert log.head == 5
    assert log.append(51, E.TAMPER, value=E.TAMPER_SUPPLY_LOW) == 5
    assert log.torn_bytes == 10
    assert E.verify_chain(_all(log), E.GENESIS, 0, log.head_hash) is None
    assert _log(flash, n=4, segments=4).count == 6


def test_power_cut_again_during_the_boot_repair_of_a_torn_tail():
    # Every cut of one append that lands mid-segment, after a committed record: the reboot
    # rewrites that segment (to .tmp, then rename) -- and is cut at every unit of that
    # repair, then reboots again (tests/firmware/powercut_harness.py checks the log). Under
    # MicroPython one cut, in the middle of the record, for the heap (see test_powercut.py).
    if REDUCED:
        layout = Layout(2, 2, 0, 3, 2, [{}], [("rec", E.CAL_CHECK, "")])
        victim = 0  # record 3, after record 2 in segment 1
    else:
        layout = Layout(4, 3, 2, 3, 0, [{}],
                        [("rec", E.CAL_CHECK, "check %d" % i) for i in range(4)])
        victim = 3  # record 6, after records 4 and 5 in segment 1
    window = []
    picked = []

    def nested(n, done):
        if len(done) == victim:
            window.append(n)
            if not REDUCED or len(window) == E.OVERHEAD // 2:
                picked.append(n)
                return True
        return False

    def check(flash, done, expected, base_head, where):
        if not REDUCED or (picked and where == "cut after %d units" % picked[-1]):
            check_log(layout, flash, done, expected, base_head, where)

    every_cut(layout, layout.base(), check, nested)
    assert len(window) >= E.OVERHEAD and len(picked) == (1 if REDUCED else len(window))


def test_truncate_drops_the_newest_records_also_when_a_cut_lands_in_it():
    # records 0..9 in segments of 4 (0-3, 4-7, 8-9); truncate(5) keeps 0..4: the segment of
    # 8-9 is removed, that of 4-7 cut short. A cut at every unit of it, then the boot runs it
    # again (as the device does while its state still holds the mark): the same log each time
    from firmware.ramflash import PowerCut

    base = RamFlash()
    full = _log(base, n=4, segments=4)
    _fill(full, 10)
    kept = _all(full)[:5]
    units = base.units
    offset = 0
    while True:
        flash = base.clone()
        log = _log(flash, n=4, segments=4)
        flash.cut_after(offset)
        try:
            log.truncate(5)
            whole = True
        except PowerCut:
            whole = False
        flash.power_on()
        log = _log(flash, n=4, segments=4)
        log.truncate(5)
        where = "cut after %d units" % offset
        assert (log.first, log.head) == (0, 5) and _all(log) == kept, where
        assert log.append(2000, E.BOOT) == 5 and E.verify_chain(_all(log), E.GENESIS, 0, log.head_hash) is None, where
        if whole:
            break
        offset += 1
    assert offset > 10  # the truncate wrote (a .tmp of the segment kept short, a rename, a removal)
    full.truncate(10)  # at the head: nothing to drop
    assert full.head == 10 and base.units == units
