"""The provider's keys and key files (host_tools/keys.py)."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import ed25519
from firmware.authority import Authority
from host_tools import codes, keys
from protocol import tokens
from protocol.coretime import DAY


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _hkdf_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 by hand (salt absent: HashLen zero bytes), to check the library call."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def test_keygen_writes_three_files_0600(tmp_path):
    made = keys.keygen(tmp_path / "provider")
    for name in ("root_key", "root_public", "master_secret"):
        assert made[name].exists()
        assert _mode(made[name]) == 0o600, name
    root = keys.load_root_key(made["root_key"])
    assert root.public_key == made["root_public_key"] == keys.load_public_key(made["root_public"])
    assert made["root_id"] == tokens.root_id(root.public_key).hex()
    assert len(keys.load_master_secret(made["master_secret"])) == 32
    assert not list((tmp_path / "provider").glob(".*.tmp"))  # no temporary files left


def test_keygen_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        made = keys.keygen(tmp_path)
    finally:
        os.umask(old)
    assert _mode(made["root_key"]) == 0o600


def test_keygen_never_overwrites_unless_asked(tmp_path):
    first = keys.keygen(tmp_path)
    with pytest.raises(keys.KeysError, match="exists"):
        keys.keygen(tmp_path)
    assert keys.load_root_key(first["root_key"]).public_key == first["root_public_key"]
    second = keys.keygen(tmp_path, overwrite=True)
    assert second["root_public_key"] != first["root_public_key"]


def test_passphrase_protected_root_key(tmp_path):
    made = keys.keygen(tmp_path, passphrase=b"correct horse")
    assert b"ENCRYPTED" in made["root_key"].read_bytes()
    assert keys.load_root_key(made["root_key"], passphrase=b"correct horse").public_key == made["root_public_key"]
    with pytest.raises(keys.KeysError):
        keys.load_root_key(made["root_key"], passphrase=b"wrong")
    with pytest.raises(keys.KeysError):
        keys.load_root_key(made["root_key"])


def test_private_files_readable_by_others_are_refused(tmp_path):
    made = keys.keygen(tmp_path)
    os.chmod(made["root_key"], 0o644)
    with pytest.raises(keys.KeysError, match="chmod 600"):
        keys.load_root_key(made["root_key"])
    os.chmod(made["master_secret"], 0o640)
    with pytest.raises(keys.KeysError, match="readable by others"):
        keys.load_master_secret(made["master_secret"])
    with pytest.raises(keys.KeysError, match="no such key file"):
        keys.load_root_key(tmp_path / "missing.key")


def test_delegated_key_round_trip(tmp_path):
    made = keys.keygen(tmp_path)
    tech = keys.delegate_to_file(made["root_key"], tmp_path / "tech-01.key", "tech-01", ["calibrate"], days=90, now=1000)
    assert _mode(tmp_path / "tech-01.key") == 0o600
    loaded = keys.load_delegated_key(tmp_path / "tech-01.key")
    assert (loaded.key_id, loaded.scopes, loaded.issued, loaded.expires) == ("tech-01", ("calibrate",), 1000, 1000 + 90 * DAY)
    assert loaded.certificate == tech.certificate
    assert loaded.root_public_key == made["root_public_key"]
    cert = tokens.parse_certificate(loaded.certificate)
    assert ed25519.verify(made["root_public_key"], cert.signed, cert.signature)
    assert isinstance(keys.load_signer(tmp_path / "tech-01.key"), keys.DelegatedKey)
    assert isinstance(keys.load_signer(made["root_key"]), keys.RootKey)
    message = b"hello"
    assert ed25519.verify(loaded.public_key, message, loaded.sign(message))


def test_delegated_key_may_sign_its_scopes_only():
    root = keys.RootKey.generate()
    tech = keys.delegate(root, "tech-01", ["calibrate"], issued=0, expires=DAY)
    assert tech.may_sign("service") and tech.may_sign("service_close")
    assert not tech.may_sign("unlock") and not tech.may_sign("work_order") and not tech.may_sign("fly")
    assert all(root.may_sign(action) for action in tokens.ACTION_SCOPES)


def test_tampered_or_mismatched_delegated_key_files_are_refused(tmp_path):
    root = keys.RootKey.generate()
    other_root = keys.RootKey.generate()
    tech = keys.delegate(root, "tech-01", ["unlock"], issued=0, expires=DAY)
    path = keys.save_delegated_key(tmp_path / "tech.key", tech)
    text = path.read_text()
    # a certificate edited to add scopes no longer carries the root's signature
    cert = bytearray(tech.certificate)
    cert[4 + 1 + 7 + 32] = 0x1F
    with pytest.raises(keys.KeysError, match="not signed by this root"):
        keys.DelegatedKey(tech._private, bytes(cert), root.public_key)
    with pytest.raises(keys.KeysError, match="not signed by this root"):
        keys.DelegatedKey(tech._private, tech.certificate, other_root.public_key)
    other = keys.delegate(root, "tech-02", ["unlock"], issued=0, expires=DAY)
    with pytest.raises(keys.KeysError, match="another key pair"):
        keys.DelegatedKey(tech._private, other.certificate, root.public_key)
    path.write_text(text.replace(keys.DELEGATED_FORMAT, "something-else"))
    with pytest.raises(keys.KeysError, match="not a delegated key file"):
        keys.load_delegated_key(path)
    path.write_text("{not json")
    with pytest.raises(keys.KeysError):
        keys.load_delegated_key(path)


def test_certify_refuses_bad_requests():
    root = keys.RootKey.generate()
    public = keys.delegate(root, "x", ["unlock"], issued=0, expires=1).public_key
    with pytest.raises(keys.KeysError, match="valid Ed25519"):
        keys.certify(root, "weak", b"\x01" + bytes(31), ["unlock"], issued=0, expires=DAY)
    with pytest.raises(keys.KeysError, match="expire after"):
        keys.certify(root, "tech", public, ["unlock"], issued=DAY, expires=DAY)
    with pytest.raises(keys.KeysError, match="unknown scope"):
        keys.certify(root, "tech", public, ["everything"], issued=0, expires=DAY)
    with pytest.raises(keys.KeysError, match="root"):
        keys.certify(root, "root", public, ["unlock"], issued=0, expires=DAY)
    with pytest.raises(keys.KeysError, match="key id"):
        keys.certify(root, "tech 01", public, ["unlock"], issued=0, expires=DAY)
    with pytest.raises(keys.KeysError, match="at least one day"):
        keys.delegate_to_file("unused", "unused", "tech", ["unlock"], days=0)


def test_device_secret_is_hkdf_sha256_of_master_with_serial_as_info():
    master = bytes(range(32))
    assert keys.derive_device_secret(master, "LCI-0001") == _hkdf_sha256(master, b"LCI-0001")
    assert len(keys.derive_device_secret(master, "LCI-0001")) == 32
    with pytest.raises(keys.KeysError):
        keys.derive_device_secret(b"short", "LCI-0001")
    with pytest.raises(keys.KeysError):
        keys.derive_device_secret(master, "")


@given(st.binary(min_size=32, max_size=32), st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
@settings(max_examples=50, deadline=None)
def test_device_secrets_differ_per_serial(master, serial_a, serial_b):
    a = keys.derive_device_secret(master, serial_a)
    assert a == keys.derive_device_secret(master, serial_a)
    assert (a == keys.derive_device_secret(master, serial_b)) == (serial_a == serial_b)


def test_provision_fields_make_a_working_device(tmp_path):
    made = keys.keygen(tmp_path)
    master = keys.load_master_secret(made["master_secret"])
    fields = keys.provision_fields("LCI-0042", made["root_public_key"], master)
    assert set(fields) == {"serial", "root_key", "device_secret"}
    assert fields["device_secret"] == keys.derive_device_secret(master, "LCI-0042")
    device = Authority(fields["serial"], fields["root_key"], fields["device_secret"])
    request = device.request_code("clear", 3, os.urandom(8))
    assert device.check_code(request, codes.answer(master, "LCI-0042", request, "clear", lockout=3), "clear", 3)
    # the back office needs the master secret and the serial only
    other = keys.provision_fields("LCI-0043", made["root_public_key"], master)
    assert other["device_secret"] != fields["device_secret"]


def test_provision_fields_refuse_bad_input():
    root = keys.RootKey.generate()
    with pytest.raises(keys.KeysError):
        keys.provision_fields("", root.public_key, bytes(32))
    with pytest.raises(keys.KeysError):
        keys.provision_fields("x" * 65, root.public_key, bytes(32))
    with pytest.raises(keys.KeysError):
        keys.provision_fields("LCI-1", bytes(32), bytes(32))


def test_master_secret_file_checks(tmp_path):
    with pytest.raises(keys.KeysError):
        keys.save_master_secret(tmp_path / "m", b"short")
    path = keys.save_master_secret(tmp_path / "m", bytes(32))
    assert keys.load_master_secret(path) == bytes(32)
    path.write_text('{"format": "lci777-master-secret/1", "secret": "00"}')
    with pytest.raises(keys.KeysError, match="32 bytes"):
        keys.load_master_secret(path)


def test_public_key_file_checks(tmp_path):
    path = tmp_path / "root.pub"
    path.write_text("zz\n")
    with pytest.raises(keys.KeysError):
        keys.load_public_key(path)
    path.write_text((b"\x01" + bytes(31)).hex() + "\n")
    with pytest.raises(keys.KeysError, match="valid"):
        keys.load_public_key(path)


def test_core_now_is_on_the_core_epoch():
    assert abs(keys.core_now() - (int(time.time()) - 1577836800)) <= 1
