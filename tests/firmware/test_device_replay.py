"""Replay records: a token works once, for as long as it could ever be valid (both runtimes).

The device keeps a bounded number of applied token ids; a record leaves only by raising a
floor to its expiry, so neither eviction nor setting the clock back revives a token.
"""

from firmware.config import Config
from protocol import errors
from protocol.endpoint import Refused
from tests.firmware.authority_double import mint
from tests.firmware.device_rig import START, Rig


def apply(rig, token):
    try:
        rig.device.apply_token(token, rig.nonce())
    except Refused as refusal:
        return refusal.code
    return None


def lock_and_unlock_token(rig, expires):
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    return mint("unlock", {"seconds": 60}, expires=expires)


def test_a_token_works_once():
    rig = Rig()
    token = lock_and_unlock_token(rig, START + 3600)
    assert apply(rig, token) is None
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    assert apply(rig, token) == errors.ALREADY_APPLIED
    assert rig.compliance == "lockout"


def test_a_record_evicted_to_make_room_is_still_a_replay():
    rig = Rig(config=Config(used_tokens_kept=4))
    old = lock_and_unlock_token(rig, START + 7 * 86400)  # a long-lived token
    assert apply(rig, old) is None
    for n in range(6):  # later tokens push its record out (their expiries are later)
        rig.token("lockout", {"cause": "unpaid_balance"}, key="billing", expires=START + 8 * 86400 + n)
    assert len(rig.device.used_ids) <= 4
    assert apply(rig, old) == errors.REPLAYED
    assert rig.compliance == "lockout"


def test_the_clock_set_back_does_not_revive_a_used_expired_token():
    rig = Rig()
    token = lock_and_unlock_token(rig, START + 600)
    assert apply(rig, token) is None
    rig.advance(8 * 86400)  # long expired: a later token prunes its record
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing", expires=START + 9 * 86400)
    assert rig.device.replay_floor == START + 600  # its record left by raising the floor
    rig.token("set_time", {"time": START}, nonce=rig.nonce())  # back to before its expiry
    assert apply(rig, token) == errors.EXPIRED  # by the high-water clock, before its record
    assert rig.compliance == "lockout"


def test_a_clock_corrected_backwards_within_a_week_still_takes_new_tokens():
    rig = Rig(config=Config(overrides_per_service=2))  # two unlocks
    used = lock_and_unlock_token(rig, START + 600)
    assert apply(rig, used) is None
    rig.advance(2 * 86400)
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing", expires=START + 3 * 86400)
    rig.token("set_time", {"time": START}, nonce=rig.nonce())  # the clock ran two days fast
    # validity is judged by the device's high-water clock (STATUS now), not the corrected
    # wall clock: a token that expires before it is expired; one minted from STATUS works
    early = mint("unlock", {"seconds": 60}, expires=START + 600)
    assert apply(rig, early) == errors.EXPIRED
    now = rig.device.status()["now"]
    assert now >= START + 2 * 86400
    fresh = mint("unlock", {"seconds": 60}, expires=now + 600)
    assert apply(rig, fresh) is None
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing", expires=START + 3 * 86400)
    assert apply(rig, used) in (errors.EXPIRED, errors.REPLAYED)  # and the old one stays refused


def test_replay_records_survive_a_reboot():
    rig = Rig()
    token = lock_and_unlock_token(rig, START + 3600)
    assert apply(rig, token) is None
    rig.token("lockout", {"cause": "unpaid_balance"}, key="billing")
    rig.reboot()
    assert apply(rig, token) == errors.ALREADY_APPLIED


def test_long_lived_directives_evicted_for_room_never_block_a_session_token():
    rig = Rig(config=Config(used_tokens_kept=4))
    for n in range(6):  # directives valid for 30 days push each other out: the floor rises
        rig.token("lockout", {"cause": "unpaid_balance"}, key="billing", expires=START + 30 * 86400 + n)
    assert rig.device.replay_floor >= START + 30 * 86400
    # a technician's token for this session, valid ten minutes, still opens the session
    rig.token("service", {}, nonce=rig.nonce(), expires=START + 600)
    assert rig.compliance == "service"
