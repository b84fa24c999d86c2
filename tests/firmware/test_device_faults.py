"""A change is all or nothing whatever fails under it (both runtimes).

On a board the usual failure inside a change is not a refusal but the heap: a MemoryError
while the state file is written. The device must then hold in RAM exactly what it held
before (the flash still holds it too), so the same token later applies cleanly, and a
storage error is a refusal with its code that changes nothing.
"""

from firmware.ramflash import RamFlash
from protocol import errors
from protocol.endpoint import Refused
from tests.dualtest import raises
from tests.firmware.authority_double import mint
from tests.firmware.device_rig import Rig


class FailingFlash(RamFlash):
    """RamFlash whose next write of the state file (after `skip` more) raises `error` (once)."""

    def __init__(self, files=None, fill=None):
        RamFlash.__init__(self, files, fill)
        self.error = None
        self.skip = 0

    def clone(self):
        return FailingFlash(self.files, self.fill)

    def write(self, name, data):
        if self.error is not None and name == "state.new":
            if self.skip:
                self.skip -= 1
            else:
                error, self.error = self.error, None
                raise error
        RamFlash.write(self, name, data)


def _held(rig):
    d = rig.device
    return (d.compliance.state, d.causes, d.directive_seq, d.recall_deadline, len(d.used_ids), d.replay_floor)


def _written_since(rig, head):
    """The kinds of the records from index `head` on, but the refusals' summaries."""
    return [r["kind_name"] for r in rig.records(head) if r["kind_name"] != "refusals"]


def _lockout_token():
    return mint("lockout", {"cause": "unpaid_balance", "seq": 1}, key="billing")


def test_a_memory_error_while_saving_leaves_the_device_as_it_was():
    rig = Rig(flash=FailingFlash())
    before = _held(rig)
    assert rig.compliance == "normal"
    token = _lockout_token()
    rig.flash.error = MemoryError("memory allocation failed, allocating 1280 bytes")
    raises(MemoryError, rig.device.apply_token, token, rig.nonce())
    assert _held(rig) == before
    # the same token applies now, and what it did survives a reboot
    rig.device.apply_token(token, rig.nonce())
    assert rig.compliance == "lockout"
    rig.reboot()
    assert rig.compliance == "lockout" and rig.device.directive_seq == 1


def test_a_storage_error_is_a_refusal_that_changes_nothing():
    rig = Rig(flash=FailingFlash())
    before = _held(rig)
    rig.flash.error = OSError(28)  # ENOSPC
    refusal = raises(Refused, rig.device.apply_token, _lockout_token(), rig.nonce())
    assert refusal.code == errors.STORAGE_FAILURE
    assert _held(rig) == before
    rig.reboot()
    assert _held(rig) == before


def test_a_storage_error_at_any_save_of_a_change_leaves_no_record_of_it():
    # whichever of the change's state writes fails, the records it wrote go with it: the same
    # token then applies once, and the log holds one acceptance of it
    for skip in range(3):
        rig = Rig(flash=FailingFlash())
        before = _held(rig)
        head = rig.device.log.head
        token = _lockout_token()
        rig.flash.error, rig.flash.skip = OSError(28), skip
        try:
            rig.device.apply_token(token, rig.nonce())
        except Refused as refusal:
            assert refusal.code == errors.STORAGE_FAILURE, (skip, refusal.code)
            assert _held(rig) == before and _written_since(rig, head) == [], (skip, _written_since(rig, head))
            rig.reboot()
            assert _held(rig) == before and _written_since(rig, head) == ["boot"], skip
            rig.device.apply_token(token, rig.nonce())
        assert rig.compliance == "lockout", skip
        assert _written_since(rig, head).count("token_accepted") == 1, (skip, _written_since(rig, head))
