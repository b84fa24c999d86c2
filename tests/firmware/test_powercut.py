"""Power cuts at every byte offset of every write: the storage double, then a device day (both runtimes).

The harness (tests/firmware/powercut_harness.py) runs a scenario once to count its units
(bytes written, renames, removes), then for every n from 0 to that count again on a fresh
copy of the same flash with the power cut after n units; the device "reboots" (fresh
objects on the wrecked flash) and these hold after every cut:

- the log holds every record whose append returned, byte for byte (compared by hash with
  the uncut run), plus at most the one record in flight, and nothing else: no torn record;
- the chain verifies from the first stored record to the head hash, and the log goes on
  (a record appended after the reboot chains on, and survives another reboot);
- no segment holding undownloaded records is gone; the download mark never goes back;
- the state file loads as the last saved state or the one being saved, never a mix.

CPython runs the full day: 12 records with rollovers at 4, 8 and 12, the drop of segment 0
after a download mark, four state saves and a refused record that writes LOG_FULL from the
reserve (817 units), once with torn bytes left out and once with them erased to 0xFF.
In a MicroPython VM with the default ~1 MB heap (REDUCED) it runs every offset of a smaller
day (two appends: one mid-segment, one that rolls over and drops a downloaded segment; 63
units) with a lighter re-check, and not the 0xFF variant: the test runner runs a whole file
in one VM and a garbage collection there corrupts memory (see docs/eventlog.md, "Testing"),
so each file's run must fit the heap. Given `-X heapsize=64M` it runs the full day as
CPython does. State saves are cut at every offset in test_persist.py, the boot's tail
repair in test_eventlog.py.
"""

from firmware.ramflash import PowerCut, RamFlash
from tests.dualtest import raises
from tests.firmware.powercut_harness import DAY, REDUCED, check_log, check_state, every_cut


# ---- the storage double itself -------------------------------------------------------------
def test_ramflash_keeps_the_first_bytes_of_a_cut_write_and_then_is_dead():
    flash = RamFlash({"a": b"old"})
    flash.cut_after(5)
    flash.append("a", b"12")
    raises(PowerCut, flash.write, "b", b"abcdef")
    assert flash.read("a") == b"old12" and flash.read("b") == b"abc"
    for op in (lambda: flash.append("a", b"x"), lambda: flash.rename("a", "c"),
               lambda: flash.write("a", b"")):
        raises(PowerCut, op)  # no write with the power off
    flash.power_on()
    flash.append("a", b"!")
    assert flash.read("a") == b"old12!" and flash.units == 6


def test_ramflash_write_empties_the_file_first_and_fill_marks_the_torn_rest():
    flash = RamFlash({"a": b"precious"}, fill=0xFF)
    flash.cut_after(2)
    raises(PowerCut, flash.write, "a", b"1234")
    assert flash.read("a") == b"12\xff\xff"
    flash = RamFlash({"a": b"precious"})
    flash.cut_after(0)
    raises(PowerCut, flash.write, "a", b"1234")
    assert flash.read("a") == b""


def test_ramflash_rename_and_remove_are_all_or_nothing():
    flash = RamFlash({"a.new": b"N", "a": b"O", "b": b"B"})
    flash.cut_after(0)
    raises(PowerCut, flash.rename, "a.new", "a")
    assert flash.read("a") == b"O" and flash.read("a.new") == b"N"
    flash.power_on()
    flash.cut_after(1)
    flash.rename("a.new", "a")
    raises(PowerCut, flash.remove, "b")
    assert flash.names() == ["a", "b"] and flash.read("a") == b"N"


# ---- the scenarios -------------------------------------------------------------------------
def test_every_cut_of_a_device_day_keeps_log_and_state():
    base = DAY.base()

    def check(flash, done, expected, base_head, where):
        if not REDUCED:  # (no state saves in the MicroPython day: see test_persist.py)
            check_state(DAY.states, flash, done, where)
        check_log(DAY, flash, done, expected, base_head, where)

    total = every_cut(DAY, base, check)
    # every byte of the records, the state saves and the mark, the rollovers, the drop
    assert total > (60 if REDUCED else 800)


def test_every_cut_with_erased_flash_fill_in_the_torn_part():
    if REDUCED:
        return  # CPython only: the MicroPython heap holds one every-offset log run per file

    def check(flash, done, expected, base_head, where):
        check_log(DAY, flash, done, expected, base_head, where)

    every_cut(DAY, DAY.base(fill=0xFF), check)
