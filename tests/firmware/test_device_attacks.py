"""The attack table against the real device: firmware/device.py with the
real Authority (firmware/authority.py, firmware/ed25519.py), through the real protocol
handler (TOKEN, CODE_REQUEST, CODE_ENTER frames) and the handset's keypad. Both runtimes.

Every row asserts, for every attempt:
1. the NACK code (the reason);
2. the refusal counted with that code and the NACK's detail (firmware/refusals.py): in one
   new `refusals` record carrying the count (the first after a quiet spell) or still in RAM
   for the next summary, never more than that one record; the older log bytes untouched;
3. nothing else changed (tests/firmware/attack_rig.py's Witness): compliance and session
   state, causes, deadlines, counters, replay records and floor, keypad-code state, the
   clocks, every persisted file but the log (state, provision, log mark), relay, alarm and
   LEDs, the session nonce, the Authority's certificate cache, the endpoint's fault count.
   A wrong keypad code is the one refusal that changes something by design: the wrong-code
   count and its back-off (and nothing else);
4. a valid token (or code) right after the attack is accepted: the attack poisoned nothing
   (on CPython a valid token after every row; under MicroPython a valid token after the
   replay and bit-flip rows and a valid keypad code after the others, see valid_after).

Rows: replay; a token for another device; not yet valid; expired; scope escalation (a
calibrate-only technician key tries to unlock); an expired delegation; a bit flip in every
field of the token layout (protocol/tokens.py); truncation; a wrong key; the clock set back
to revive an expired token; keypad brute force; reuse of a used code.

MicroPython budget: the test VM must not collect garbage (tests/firmware/device_rig.py), and
one Ed25519 signature or verification allocates about 1.1 MB there, so the file signs each
token once (attack_rig caches them), boots every test from one set-up device, shares one
Authority (its certificate cache saves re-verifying a certificate), and keeps a few extra
variants (FULL) to CPython, where verification is OpenSSL's: every byte of a truncation,
every field of the certificate, a replay while driving and after a reboot, more wrong keys
and clock attempts. Every row and every field of the token runs on both runtimes; the whole
file allocates about 45 MB of the runner's 64 MB heap under MicroPython (as much as
test_authority.py). Keep it so when adding a test, or put it in a new file.
"""

import sys

from firmware import eventlog, keypad
from protocol import errors, messages
from tests.firmware.attack_rig import (
    BOOT_AT,
    HOUR,
    SECRET,
    SERIAL,
    T0,
    Host,
    Witness,
    certificate_spans,
    field_spans,
    flipped,
    fresh,
    rejection,
    session_token,
    token,
)
from tests.firmware.authority_fixtures import body, certificate_body, signed, signer
from tests.firmware.authority_fixtures import token as signed_token

FULL = sys.implementation.name != "micropython"
UNLOCK = messages.ACTIONS.index("unlock")
SERVICE = messages.ACTIONS.index("service")


# ---- checking one attempt ------------------------------------------------------------------------
def counted(witness, source, before, nack):
    """The refusal `nack` was counted: summed up in one new record, or pending in RAM."""
    count, code, detail = witness.rig.device.refusals.pending(source)
    added = witness.added()
    if added:
        assert count == 0, (count, added)
        assert [rejection(r) for r in added] == [
            (eventlog.REFUSALS, before + 1, "%s 0x%02x %s" % (source, nack[0], nack[1]))
        ], added
    else:
        assert (count, code, detail) == (before + 1, nack[0], nack[1])
    assert witness.log_kept()


def _nothing_else(witness, source, before, nack):
    changes = witness.changes()
    assert changes == [], changes
    counted(witness, source, before, nack)


def refused(rig, host, data, code):
    """Send `data` as a TOKEN: NACK `code`, counted, nothing else changed; the NACK detail."""
    witness = Witness(rig)
    before = rig.device.refusals.pending("token")[0]
    nack = host.nack(messages.TOKEN, token=data)
    assert nack[0] == code, "NACK 0x%02x (%s), expected 0x%02x" % (nack[0], nack[1], code)
    _nothing_else(witness, "token", before, nack)
    return nack[1]


def already(rig, host, data):
    """Send a token this device applied before: NACK ALREADY_APPLIED, no record, nothing changed."""
    witness = Witness(rig)
    nack = host.nack(messages.TOKEN, token=data)
    assert nack[0] == errors.ALREADY_APPLIED, "NACK 0x%02x (%s)" % (nack[0], nack[1])
    assert witness.changes() == [] and witness.added() == [], witness.added()
    assert witness.log_kept()


def refused_as_any(rig, host, data, codes):
    """The same for an attempt that may be refused with any of `codes`; the code."""
    witness = Witness(rig)
    before = rig.device.refusals.pending("token")[0]
    nack = host.nack(messages.TOKEN, token=data)
    assert nack[0] in codes, "NACK 0x%02x (%s), expected one of %r" % (nack[0], nack[1], codes)
    _nothing_else(witness, "token", before, nack)
    return nack[0]


def accepted(rig, host, data):
    """Send `data` as a TOKEN: the reply, and a token_accepted record."""
    head = rig.device.log.head
    reply = host.ok(messages.TOKEN, token=data)
    kinds = [r["kind"] for r in rig.records(head)]
    assert eventlog.TOKEN_ACCEPTED in kinds, kinds
    return reply


def unlocks(rig, host, data):
    """The valid token after an attack: an unlock token lifts the lockout."""
    assert rig.compliance == "lockout"
    reply = accepted(rig, host, data)
    assert reply == {"action": UNLOCK, "detail": "3600 s"}, reply
    assert rig.compliance == "code_unlock" and rig.device.override_left() == HOUR


def code_unlocks(rig, host):
    """A valid keypad code lifts the lockout (request and answer over the link)."""
    assert rig.compliance == "lockout"
    request, right = _request(host)
    assert host.ok(messages.CODE_ENTER, code=right)["action"] == UNLOCK
    assert rig.compliance == "code_unlock"


def valid_after(rig, host):
    """The valid change right after an attack that the Authority refuses on its own: the
    valid unlock token; under MicroPython (each verification ~1.1 MB of a heap that must not
    collect) a valid keypad unlock code. The replay, bit-flip and clock rows apply a valid
    token on both runtimes."""
    if FULL:
        unlocks(rig, host, token("probe"))
    else:
        code_unlocks(rig, host)


# ---- replay ----------------------------------------------------------------------------------
def test_replay_a_used_token_never_works_again():
    # not later, not once its record has left for the replay floor, not with the clock set back
    rig, host = fresh()
    nonce = host.hello()
    keep = rig.config.replay_keep_expired_s  # how long an expired token's record is kept
    rig.advance(HOUR)
    unlocks(rig, host, token("window"))  # used while valid
    if FULL:  # replayed while driving: the relay stays as it is
        assert rig.start(0) == "engine_enabled" and rig.relay.on
        already(rig, host, token("window"))
        assert rig.relay.on and rig.session == "engine_enabled"
        rig.ignition(False)
    rig.advance(HOUR)  # its unlock is over and it has expired
    if FULL:  # the provider sets the clock back: the token stays expired by the device's
        # high-water clock (the clock tokens and deadlines are judged by)
        accepted(rig, host, session_token("set_time_back_again", nonce))
        assert rig.clock.wall == T0 + 90 * 60 and rig.compliance == "lockout"
        already(rig, host, token("window"))  # its record answers first: nothing changes
    rig.advance(keep + HOUR)
    unlocks(rig, host, token("probe"))  # recorded once the window token's record may go:
    assert rig.device.replay_floor == T0 + 2 * HOUR  # ... it left by raising the floor
    rig.advance(HOUR)
    assert rig.compliance == "lockout"  # where the probe token would apply again
    already(rig, host, token("probe"))
    if FULL:  # the replay records are persisted
        rig.reboot()
        host = Host(rig)
        assert host.hello() == nonce  # the test bench's random numbers start over
        already(rig, host, token("probe"))
    # the provider sets the clock back into the window token's validity (its clock ran fast)
    reply = accepted(rig, host, session_token("set_time_back", nonce))
    assert reply["detail"] == "clock %d" % (T0 + 90 * 60) and rig.clock.wall == T0 + 90 * 60
    assert rig.compliance == "lockout"
    refused(rig, host, token("window"), errors.EXPIRED)  # by the high-water clock
    code_unlocks(rig, host)


# ---- another device, the validity window ----------------------------------------------------------
def test_a_token_for_another_device_is_refused():
    rig, host = fresh()
    detail = refused(rig, host, token("other_device"), errors.WRONG_DEVICE)
    assert "LCI-0002" in detail
    valid_after(rig, host)


def test_a_token_not_yet_valid_is_refused():
    rig, host = fresh()
    assert rig.clock.wall == BOOT_AT < T0 + HOUR
    refused(rig, host, token("window"), errors.NOT_YET_VALID)
    valid_after(rig, host)


def test_an_expired_token_is_refused():
    rig, host = fresh()
    rig.advance(2 * HOUR)  # past the window token's expiry, still locked out
    assert rig.compliance == "lockout" and rig.clock.wall >= T0 + 2 * HOUR
    refused(rig, host, token("window"), errors.EXPIRED)
    valid_after(rig, host)


# ---- keys and delegations ---------------------------------------------------------------------
def test_scope_escalation_is_refused():
    # a calibrate-only technician key tries to unlock
    rig, host = fresh()
    detail = refused(rig, host, token("tech_unlock"), errors.OUT_OF_SCOPE)
    assert "tech-01" in detail
    if FULL:  # ... and to set the clock, in the live session
        refused(rig, host, session_token("tech_set_time", host.hello()), errors.OUT_OF_SCOPE)
    valid_after(rig, host)


def test_an_expired_delegation_is_refused():
    rig, host = fresh()
    detail = refused(rig, host, token("old_tech_unlock"), errors.DELEGATION_EXPIRED)
    assert "old-tech" in detail
    valid_after(rig, host)


def test_a_wrong_key_is_refused():
    rig, host = fresh()
    # a token that names the provider's root, signed by another key
    refused(rig, host, token("wrong_signer"), errors.BAD_SIGNATURE)
    # a delegated key id without its certificate (refused before any signature is checked)
    bare = body({"key": "tech-01", "cert": b"", "times": (T0 - 1, T0 - 1, T0 + HOUR)})
    refused(rig, host, bare + bytes(64), errors.UNKNOWN_KEY)
    if FULL:
        # a token whole and valid under another provider's root
        refused(rig, host, token("other_root"), errors.UNKNOWN_KEY)
        # a certificate the technician signed for himself, claiming every scope
        forged = certificate_body("tech-01", signer("tech").public_key, 0x1F, T0 + HOUR)
        options = {"key": "tech-01", "cert": signed("tech", forged), "signer": "tech"}
        options["times"] = (T0 - 1, T0 - 1, T0 + HOUR)
        refused(rig, host, signed_token(options), errors.BAD_DELEGATION)
    valid_after(rig, host)


# ---- bit flips and truncation -----------------------------------------------------------------
LENGTH_CODES = (errors.MALFORMED_TOKEN, errors.BAD_SIGNATURE, errors.BAD_DELEGATION, errors.UNKNOWN_KEY)
EXPECTED = {
    "magic": (errors.MALFORMED_TOKEN,),
    "version": (errors.MALFORMED_TOKEN,),
    "kind": (errors.MALFORMED_TOKEN,),
    "root id": (errors.UNKNOWN_KEY,),
    "key id": (errors.BAD_DELEGATION,),  # no longer the certificate's key id
    "certificate magic": (errors.MALFORMED_TOKEN,),
    "certificate version": (errors.MALFORMED_TOKEN,),
    "certificate kind": (errors.MALFORMED_TOKEN,),
    "certificate key id": (errors.BAD_DELEGATION,),
    "certificate public key": (errors.BAD_DELEGATION,),
    "certificate scopes": (errors.BAD_DELEGATION, errors.MALFORMED_TOKEN),  # unknown bits
    "certificate issued": (errors.BAD_DELEGATION,),
    "certificate expires": (errors.BAD_DELEGATION,),
    "certificate signature": (errors.BAD_DELEGATION,),
    "serial": (errors.BAD_SIGNATURE,),
    "action": (errors.BAD_SIGNATURE,),
    "args": (errors.BAD_SIGNATURE,),
    "issued": (errors.BAD_SIGNATURE,),
    "not_before": (errors.BAD_SIGNATURE,),
    "expires": (errors.BAD_SIGNATURE,),
    "token id": (errors.BAD_SIGNATURE,),
    "session nonce": (errors.BAD_SIGNATURE,),
    "signature": (errors.BAD_SIGNATURE,),
}


def _flips(data):
    """(field name, byte to flip) for every field of `data`: the field's first byte; in the
    certificate, each of its fields (under MicroPython its key id only: most flips there
    cost a verification; tests/firmware/test_authority_bytes.py flips every one of them
    under both runtimes); in the signature, a bit of S that makes it non-canonical, and on
    CPython R's first byte too."""
    out = []
    for name, start, end in field_spans(data):
        if name == "certificate":
            for field in certificate_spans(data, start):
                if FULL or field[0] == "certificate key id":
                    out.append((field[0], field[1]))
        elif name == "signature":
            out.append((name, end - 1))  # the top byte of S: S >= L
            if FULL:
                out.append((name, start))
        else:
            out.append((name, start))
    return out


def test_the_token_fields_cover_the_layout():
    rig, host = fresh()
    data = session_token("tech_service", host.hello())
    end = 0
    for name, start, stop in field_spans(data):
        assert start == end and stop > start, (name, start, stop)
        end = stop
    assert end == len(data)
    cert = field_spans(data)[7]
    assert cert[0] == "certificate" and certificate_spans(data, cert[1])[-1][2] == cert[2]


def test_a_bit_flip_in_every_field_is_refused():
    # a delegated, session-bound token: every field of the layout, the certificate's too
    rig, host = fresh()
    data = session_token("tech_service", host.hello())
    seen = []
    for name, at in _flips(data):
        codes = EXPECTED.get(name, LENGTH_CODES)  # a length shifts every later field
        refused_as_any(rig, host, flipped(data, at), codes)
        seen.append(name)
    for field in field_spans(data):
        assert field[0] in seen or field[0] == "certificate", field
    assert accepted(rig, host, data) == {"action": SERVICE, "detail": "service session open"}
    assert rig.compliance == "service"


def _cuts(data):
    """Lengths to cut `data` to: every length on CPython, else each field's first two bytes."""
    if FULL:
        return list(range(len(data)))
    out = [0, len(data) - 1]
    for field in field_spans(data):
        out.append(field[1])
        out.append(field[1] + 1)
    return out


def test_a_truncated_token_is_refused():
    rig, host = fresh()
    data = session_token("tech_service", host.hello())
    for n in _cuts(data):
        refused(rig, host, data[:n], errors.MALFORMED_TOKEN)
    refused(rig, host, data + b"\x00", errors.MALFORMED_TOKEN)  # and extended
    valid_after(rig, host)


# ---- the clock ---------------------------------------------------------------------------------
def test_the_clock_set_back_cannot_revive_an_expired_token():
    rig, host = fresh()
    nonce = host.hello()
    rig.advance(2 * HOUR)
    assert rig.compliance == "lockout" and rig.clock.wall >= T0 + 2 * HOUR  # the window expired
    # the clock moves only by a set-time token in scope, bound to the live session; one
    # captured in an earlier session:
    refused(rig, host, token("set_time_stale"), errors.SESSION_MISMATCH)
    if FULL:
        refused(rig, host, token("set_time_unbound"), errors.SESSION_MISMATCH)
        refused(rig, host, session_token("tech_set_time", nonce), errors.OUT_OF_SCOPE)
    refused(rig, host, token("window"), errors.EXPIRED)  # so it stays expired
    valid_after(rig, host)


# ---- keypad codes ------------------------------------------------------------------------------
def _request(host, action="unlock"):
    request = host.ok(messages.CODE_REQUEST, action=messages.ACTIONS.index(action))["request"]
    return request, keypad.answer_code(SECRET, SERIAL, request, action)


def _wrong(right, k):
    return "%08d" % ((int(right) + k * 9973) % 100000000)


def code_refused(rig, host, code, expected):
    """CODE_ENTER `code`: NACK `expected`, counted, nothing else changed."""
    witness = Witness(rig)
    before = rig.device.refusals.pending("code")[0]
    nack = host.nack(messages.CODE_ENTER, code=code)
    assert nack[0] == expected, "NACK 0x%02x (%s), expected 0x%02x" % (nack[0], nack[1], expected)
    _nothing_else(witness, "code", before, nack)


def wrong_code_counted(rig, host, code):
    """CODE_ENTER a wrong code: BAD_CODE, logged; only the wrong count (+1) and its back-off
    change (its time, from which it decays), in memory and on flash. The back-off now in
    force (seconds)."""
    witness = Witness(rig)
    before = witness.before["state"]
    pending = rig.device.refusals.pending("code")[0]
    nack = host.nack(messages.CODE_ENTER, code=code)
    assert nack[0] == errors.BAD_CODE, nack
    changes = witness.changes()
    assert sorted([c[0] for c in changes]) == ["persisted", "state"], changes
    after = rig.device._state()
    for key in before:
        if key != "k":
            assert after[key] == before[key], key
    for key in before["k"]:
        if key not in ("w", "t", "wa"):
            assert after["k"][key] == before["k"][key], key
    assert after["k"]["w"] == before["k"]["w"] + 1
    assert rig.device.state_file.load() == after  # what is counted is saved
    counted(witness, "code", pending, nack)
    return rig.device.codes.wait_left(rig.device.tb)


def test_keypad_brute_force_is_refused_and_slowed():
    rig, host = fresh()
    request, right = _request(host)
    waits = [wrong_code_counted(rig, host, _wrong(right, k)) for k in range(1, 5)]
    assert waits == [keypad.backoff_seconds(k) for k in range(1, 5)]
    assert waits[:3] == [0, 0, 0] and waits[3] > 0  # three free tries, then a wait
    # while it lasts every code is refused unchecked, the right one too, and nothing counts
    code_refused(rig, host, right, errors.CODE_BACKOFF)
    code_refused(rig, host, _wrong(right, 5), errors.CODE_BACKOFF)
    witness = Witness(rig)
    pending = rig.device.refusals.pending("code")[0]
    rig.keys(right + "#")  # typed on the handset
    assert witness.changes() == []
    last = rig.device.refusals.pending("code")
    assert last[0] == pending + 1 and last[1] == errors.CODE_BACKOFF and witness.added() == []
    # neither a new request (the client's, at the keypad) nor a power cycle lifts it
    rig.keys("A")
    request = rig.device.codes.pending["request"]
    right = keypad.answer_code(SECRET, SERIAL, request, "unlock")
    rig.reboot()
    host = Host(rig)
    code_refused(rig, host, right, errors.CODE_BACKOFF)
    rig.advance(waits[3] - 1)
    code_refused(rig, host, right, errors.CODE_BACKOFF)  # to the last second
    rig.advance(1)
    longer = wrong_code_counted(rig, host, _wrong(right, 6))  # the 5th wrong code
    assert longer == keypad.backoff_seconds(5) > waits[3]  # waits longer
    rig.advance(longer)
    assert host.ok(messages.CODE_ENTER, code=right)["action"] == UNLOCK
    assert rig.compliance == "code_unlock" and rig.device.codes.wrong == 0


def test_reuse_of_a_used_code_is_refused():
    rig, host = fresh()
    request, right = _request(host)
    assert host.ok(messages.CODE_ENTER, code=right)["action"] == UNLOCK
    assert rig.compliance == "code_unlock"
    code_refused(rig, host, right, errors.CODE_USED)
    assert rig.start(0) == "engine_enabled" and rig.relay.on  # reused while driving
    code_refused(rig, host, right, errors.CODE_USED)
    assert rig.relay.on and rig.session == "engine_enabled"
    rig.ignition(False)
    rig.advance(4 * HOUR)  # the override ends: locked out again, where it would apply
    assert rig.compliance == "lockout"
    code_refused(rig, host, right, errors.CODE_USED)
    rig.reboot()  # what was spent is persisted
    host = Host(rig)
    code_refused(rig, host, right, errors.CODE_USED)
    # against a new request it is just a wrong code; the new request's answer works
    request, fresh_right = _request(host)
    assert wrong_code_counted(rig, host, right) == 0
    assert host.ok(messages.CODE_ENTER, code=fresh_right)["action"] == UNLOCK
    assert rig.compliance == "code_unlock"
