"""StateFile: atomic saves, the envelope, recovery of interrupted saves (both runtimes)."""

import gc
import sys

from firmware import persist
from firmware.ramflash import PowerCut, RamFlash
from tests.dualtest import raises

MICROPYTHON = sys.implementation.name == "micropython"
# a ~1 MB MicroPython heap that must not collect (see tests/firmware/powercut_harness.py)
REDUCED = MICROPYTHON and gc.mem_free() < 60000000
LOCKOUT = {"compliance": "lockout", "causes": ["unpaid_balance"], "deadline": 123456}


def test_nothing_saved_loads_none():
    assert persist.StateFile(RamFlash(), "state").load() is None


def test_save_then_load_in_a_fresh_object():
    flash = RamFlash()
    sf = persist.StateFile(flash, "state")
    assert sf.save(LOCKOUT) is True
    assert persist.StateFile(flash, "state").load() == LOCKOUT
    assert flash.names() == ["state"]  # the .new file was renamed into place


def test_unchanged_state_is_not_written_again():
    flash = RamFlash()
    sf = persist.StateFile(flash, "state")
    sf.save(LOCKOUT)
    units = flash.units
    assert sf.save(dict(LOCKOUT)) is False and flash.units == units
    again = persist.StateFile(flash, "state")
    again.load()
    assert again.save(dict(LOCKOUT)) is False
    assert again.save({"compliance": "normal"}) is True


def test_envelope_layout_and_sequence():
    flash = RamFlash()
    sf = persist.StateFile(flash, "s")
    sf.save({"a": 1})
    sf.save({"a": 2})
    data = flash.read("s")
    assert data[:3] == b"LS\x01"
    assert data[3:7] == b"\x02\x00\x00\x00"  # second save
    body = b'{"a":2}'
    assert data[7:9] == bytes((len(body), 0)) and data[9:-4] == body
    assert persist.decode_envelope(data) == (2, body)


def test_every_damaged_envelope_is_ignored():
    good = persist.encode_envelope(5, b'{"x":1}')
    assert persist.decode_envelope(good) == (5, b'{"x":1}')
    for cut in range(len(good)):
        assert persist.decode_envelope(good[:cut]) is None, cut
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        assert persist.decode_envelope(bytes(bad)) is None, i
    assert persist.decode_envelope(good + b"\x00") is None
    # a sound envelope whose body is not a JSON object is no state either
    flash = RamFlash({"s": persist.encode_envelope(1, b"[1, 2]")})
    assert persist.StateFile(flash, "s").load() is None


def test_torn_new_file_leaves_the_old_state_and_is_removed():
    flash = RamFlash()
    persist.StateFile(flash, "s").save(LOCKOUT)
    newer = persist.encode_envelope(2, b'{"compliance":"normal"}')
    flash.write("s.new", newer[:-3])
    sf = persist.StateFile(flash, "s")
    assert sf.load() == LOCKOUT
    assert flash.names() == ["s"]


def test_complete_new_file_is_renamed_into_place():
    flash = RamFlash()
    persist.StateFile(flash, "s").save(LOCKOUT)
    flash.write("s.new", persist.encode_envelope(2, b'{"compliance":"normal"}'))
    assert persist.StateFile(flash, "s").load() == {"compliance": "normal"}
    assert flash.names() == ["s"]


def test_new_file_alone_is_recovered():
    # a storage whose rename is remove-then-rename, cut in between
    flash = RamFlash({"s.new": persist.encode_envelope(9, b'{"k":3}')})
    sf = persist.StateFile(flash, "s")
    assert sf.load() == {"k": 3}
    assert sf.seq == 9 and flash.names() == ["s"]


def test_stale_new_file_older_than_the_standing_one_loses():
    flash = RamFlash({"s": persist.encode_envelope(7, b'{"v":7}'),
                      "s.new": persist.encode_envelope(6, b'{"v":6}')})
    assert persist.StateFile(flash, "s").load() == {"v": 7}
    assert flash.names() == ["s"]


def test_sequence_wraps_without_losing_order():
    flash = RamFlash({"s": persist.encode_envelope(0xFFFFFFFF, b'{"v":1}'),
                      "s.new": persist.encode_envelope(0, b'{"v":2}')})
    sf = persist.StateFile(flash, "s")
    assert sf.load() == {"v": 2}
    sf.save({"v": 3})
    assert persist.decode_envelope(flash.read("s"))[0] == 1


def test_save_after_load_continues_the_sequence():
    flash = RamFlash({"s": persist.encode_envelope(41, b'{"v":1}')})
    sf = persist.StateFile(flash, "s")
    sf.load()
    sf.save({"v": 2})
    assert persist.decode_envelope(flash.read("s"))[0] == 42


def test_bad_states_are_refused_without_touching_flash():
    flash = RamFlash()
    sf = persist.StateFile(flash, "s")
    sf.save({"v": 1})
    for bad in ([1, 2], "text", {"b": b"\x00"}):
        raises(persist.StateError, sf.save, bad)
    assert persist.StateFile(flash, "s").load() == {"v": 1}


def test_a_body_over_64_kib_is_refused():
    if REDUCED:
        return  # 64 kB of test data: CPython only
    raises(persist.StateError, persist.encode_envelope, 1, b"x" * (persist.MAX_BODY + 1))
    raises(persist.StateError, persist.StateFile(RamFlash(), "s").save, {"big": "x" * 70000})


def test_clear_forgets_both_files():
    flash = RamFlash({"s.new": b"junk"})
    sf = persist.StateFile(flash, "s")
    sf.save({"v": 1})
    flash.write("s.new", b"junk")
    sf.clear()
    assert flash.names() == [] and sf.load() is None


def test_changing_the_loaded_dict_and_saving_it_writes():
    flash = RamFlash()
    persist.StateFile(flash, "s").save({"v": 1, "l": [1]})
    sf = persist.StateFile(flash, "s")
    state = sf.load()
    state["l"].append(2)
    assert sf.save(state) is True
    assert persist.StateFile(flash, "s").load() == {"v": 1, "l": [1, 2]}


def test_sets_and_non_string_keys_are_refused_on_both_runtimes():
    sf = persist.StateFile(RamFlash(), "s")
    for bad in ({"s": set()}, {1: "x"}, {"o": object()}, {"t": [(1, b"")]}):
        raises(persist.StateError, sf.save, bad)
    assert sf.save({"t": (1, 2)}) is True
    assert persist.StateFile(sf.storage, "s").load() == {"t": [1, 2]}


# ---- power cuts at every byte offset (see also tests/firmware/test_powercut.py) ------------
if REDUCED:
    # Under MicroPython the same story in fewer bytes, so that a cut at every byte offset
    # stays quick: a lockout is saved, a counter changes while locked out, a service
    # visit clears it.
    STATES = [{"compliance": "lockout"}, {"compliance": "lockout", "n": 1},
              {"compliance": "normal"}]
else:
    STATES = [
        {"compliance": "normal", "violations": 0},
        {"compliance": "lockout", "causes": ["violations"], "violations": 4, "deadline": 100000},
        {"compliance": "lockout", "causes": ["violations", "tamper"], "violations": 5,
         "deadline": 100000, "note": "a longer body than before " * 3},
        {"compliance": "lockout", "causes": ["tamper"], "violations": 0},
        {"compliance": "normal"},  # cleared at a service visit
    ]


def _saves(flash, done):
    sf = persist.StateFile(flash, "state")
    sf.load()
    for k in range(1, len(STATES)):
        sf.save(STATES[k])
        done.append(k)


def _check_loaded(flash, done, where):
    k = done[-1] if done else 0
    allowed = STATES[k : k + 2]  # the last save that returned, or the one in flight
    loaded = persist.StateFile(flash, "state").load()
    assert loaded in allowed, where
    # load() finished or cleaned up the interrupted save: one file, and it agrees
    assert flash.size("state.new") == -1, where
    assert persist.StateFile(flash, "state").load() == loaded, where


def test_every_cut_of_a_run_of_saves_leaves_the_old_or_the_new_state():
    base = RamFlash()
    persist.StateFile(base, "state").save(STATES[0])
    probe = base.clone()
    _saves(probe, [])
    assert probe.units > 20 * len(STATES)
    for n in range(probe.units + 1):
        flash = base.clone()
        flash.cut_after(n)
        done = []
        try:
            _saves(flash, done)
        except PowerCut:
            pass
        flash.power_on()
        # a second cut while load() finishes (rename) or cleans up (remove) the torn save
        for m in (0, 1) if flash.size("state.new") >= 0 else ():
            wreck = flash.clone()
            wreck.cut_after(m)
            try:
                persist.StateFile(wreck, "state").load()
            except PowerCut:
                pass
            wreck.power_on()
            _check_loaded(wreck, done, "cut after %d, then %d" % (n, m))
        _check_loaded(flash, done, "cut after %d" % n)


def test_a_saved_lockout_survives_every_cut_of_the_saves_after_it():
    if REDUCED:
        return  # covered there by the run of saves above, whose states begin with lockouts
    base = RamFlash()
    persist.StateFile(base, "state").save({"compliance": "lockout", "causes": ["unpaid_balance"]})

    def busy(flash):
        sf = persist.StateFile(flash, "state")
        sf.load()
        for i in range(3):  # counters change while locked out
            sf.save({"compliance": "lockout", "causes": ["unpaid_balance"], "attempts": i})

    probe = base.clone()
    busy(probe)
    for n in range(probe.units + 1):
        flash = base.clone()
        flash.cut_after(n)
        try:
            busy(flash)
        except PowerCut:
            pass
        flash.power_on()
        assert persist.StateFile(flash, "state").load()["compliance"] == "lockout", n


# ---- a save streams its body: canonical JSON in writes of at most 256 bytes ----------------
class ChunkLog(RamFlash):
    """RamFlash that records the size of every write and append."""

    def __init__(self, files=None):
        RamFlash.__init__(self, files)
        self.calls = []

    def write(self, name, data):
        self.calls.append(("write", name, len(data)))
        RamFlash.write(self, name, data)

    def append(self, name, data):
        self.calls.append(("append", name, len(data)))
        RamFlash.append(self, name, data)


def _replay_records(n):
    return [["%032x" % (i * 7919), 1000000 + i] for i in range(n)]


def test_a_large_state_is_written_in_pieces_of_at_most_256_bytes():
    state = {"c": "lockout", "u": _replay_records(40 if MICROPYTHON else 200), "k": {"n": 3}}
    flash = ChunkLog()
    sf = persist.StateFile(flash, "state")
    assert sf.save(state) is True
    body = b"".join(persist.body_pieces(state))
    whole = persist.encode_envelope(1, body)
    assert len(whole) > 4 * 256
    assert flash.calls[0] == ("write", "state.new", 256)
    assert all(call[0] == "append" and call[1] == "state.new" and 0 < call[2] <= 256
               for call in flash.calls[1:])
    assert sum(call[2] for call in flash.calls) == len(whole)
    assert flash.read("state") == whole
    assert persist.StateFile(flash, "state").load() == state


def test_the_body_is_sorted_compact_json_and_an_equal_state_in_another_order_is_not_rewritten():
    flash = ChunkLog()
    sf = persist.StateFile(flash, "s")
    sf.save({"b": 1, "a": [1, {"d": 2, "c": 3}, []], "e": {}, "s": "x\"y"})
    assert flash.read("s")[9:-4] == b'{"a":[1,{"c":3,"d":2},[]],"b":1,"e":{},"s":"x\\"y"}'
    calls = len(flash.calls)
    assert sf.save({"s": "x\"y", "e": {}, "a": [1, {"c": 3, "d": 2}, []], "b": 1}) is False
    assert len(flash.calls) == calls
    # a fresh StateFile knows the body on flash from its digest
    again = persist.StateFile(flash, "s")
    again.load()
    assert again.save({"e": {}, "b": 1, "s": "x\"y", "a": [1, {"d": 2, "c": 3}, []]}) is False
    assert len(flash.calls) == calls


def _load_and_save(flash, state):
    sf = persist.StateFile(flash, "state")
    sf.load()
    sf.save(state)


def test_every_cut_of_a_streamed_save_leaves_the_old_or_the_new_state():
    old = {"c": "lockout", "u": _replay_records(3)}
    new = {"c": "lockout", "u": _replay_records(12 if MICROPYTHON else 30)}
    base = RamFlash()
    persist.StateFile(base, "state").save(old)
    probe = base.clone()
    _load_and_save(probe, new)
    assert probe.units > 2 * 256
    for n in range(0, probe.units + 1, 7 if MICROPYTHON else 1):
        flash = base.clone()
        flash.cut_after(n)
        try:
            _load_and_save(flash, new)
        except PowerCut:
            pass
        flash.power_on()
        assert persist.StateFile(flash, "state").load() in (old, new), n
