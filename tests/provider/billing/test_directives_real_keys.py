"""Directives signed and answered with the provider's real keys (host_tools.keys / tokens /
codes), checked by the device's own code (firmware.authority): a billing-scope delegated key signs
recall, lockout and clear tokens the device accepts; the keypad clear code answers the request code
a handset shows."""

from __future__ import annotations

import binascii

import pytest

keys = pytest.importorskip("host_tools.keys")
tokens = pytest.importorskip("host_tools.tokens")
authority_mod = pytest.importorskip("firmware.authority")

from protocol.endpoint import Refused  # noqa: E402
from provider.billing import directives as outbox  # noqa: E402
from provider.billing.directives import core_seconds  # noqa: E402
from provider.billing.signing import CodeDesk, TokenMinter, load_code_desk, load_token_minter  # noqa: E402

from .harness import Harness, T  # noqa: E402


def _billing_key(scopes=("billing",)):
    root = keys.RootKey.generate()
    now = core_seconds(T("2025-01-01"))
    return root, keys.delegate(root, "billing-1", scopes, issued=now, expires=now + 400 * 86400)


def _fail_into_lockout(signer):
    h = Harness(signer=signer)
    ref = h.open(serial="LCI7-0042")
    h.card("tok_ok", "2025-01-19", "insufficient_funds")
    h.to("2025-02-04T12:00")
    h.engine.pay(ref, token="tok_visa")
    return h, ref


def test_tokens_signed_by_a_billing_key_are_accepted_by_the_device():
    root, key = _billing_key()
    h, ref = _fail_into_lockout(TokenMinter(key, key.key_id))
    issued = [d for d in h.directives(ref) if d["delivery"] == "token"]
    assert [d["action"] for d in issued] == ["recall", "lockout", "clear"]
    for d in issued:
        assert d["status"] == "issued" and d["key_id"] == "billing-1"
        grant = tokens.check(binascii.unhexlify(d["token"]), root.public_key, "LCI7-0042",
                             d["not_before_core"] + 60)
        assert (grant.action, grant.args, grant.key_id) == (d["action"], d["args"], "billing-1")
    # bound to the serial: another device refuses it
    with pytest.raises(Refused):
        tokens.check(binascii.unhexlify(issued[0]["token"]), root.public_key, "LCI7-9999",
                     issued[0]["not_before_core"] + 60)


def test_a_key_without_the_billing_scope_leaves_directives_pending_with_the_reason():
    _root, key = _billing_key(scopes=("unlock",))
    h, ref = _fail_into_lockout(TokenMinter(key, key.key_id))
    recall = h.directives(ref)[0]
    assert recall["status"] == "pending" and recall["token"] is None
    note = h.conn.execute("SELECT note FROM directive WHERE id = ?", (recall["id"],)).fetchone()[0]
    assert "may not sign recall" in note


def test_key_files_and_the_keypad_clear_code_round_trip(tmp_path):
    made = keys.keygen(tmp_path)
    root = keys.load_root_key(made["root_key"])
    delegated = keys.delegate(root, "billing-2", ("billing",), issued=core_seconds(T("2025-01-01")),
                              expires=core_seconds(T("2026-01-01")))
    keys.save_delegated_key(tmp_path / "billing.key", delegated)
    minter = load_token_minter(str(tmp_path / "billing.key"))
    desk = load_code_desk(str(made["master_secret"]))
    assert isinstance(minter, TokenMinter) and isinstance(desk, CodeDesk)
    h, ref = _fail_into_lockout(minter)
    # the handset (device code) shows a request for a "clear" code
    master = keys.load_master_secret(made["master_secret"])
    device = authority_mod.Authority("LCI7-0042", root.public_key,
                                     keys.derive_device_secret(master, "LCI7-0042"))
    request = device.request_code("clear", 1, b"\x01" * 8)
    code = outbox.answer_code(h.conn, h.account(ref).id, request, desk, h.engine.now)
    lockout = next(d for d in h.directives(ref) if d["action"] == "lockout")["id"]
    assert device.check_code(request, code, "clear", lockout)  # the lockout it was issued for
    assert not device.check_code(request, code, "clear", lockout + 1)  # no other one
    assert not device.check_code(request, code, "unlock")
