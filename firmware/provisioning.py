"""Provisioning: the serial, the provider's root key and the keypad secret, given once in
factory mode (PROVISION), and the Authority built from them, at provisioning and at boot.

Functions take the Device. A board imports this module for those and drops it after
(firmware/unload.py).
"""

from binascii import hexlify

from firmware import eventlog as ev
from firmware import loop
from protocol import errors
from protocol.endpoint import Refused


def build_authority(d, serial, root_key, secret):
    """The Device's Authority for these keys (its make_authority, else firmware/authority.py's),
    or None if there is none or it refuses them."""
    maker = d.make_authority
    if maker is None:
        try:
            from firmware.authority import Authority

            maker = Authority
        except ImportError:
            return None
    try:
        return maker(serial, root_key, secret)  # the Authority's own settings are its defaults
    except (ValueError, TypeError):
        return None  # a key the Authority refuses: PROVISION says so, boot goes on without


def provision(d, serial, root_key, secret):
    """Factory mode, once: the serial, the provider's root key and the keypad secret."""
    if d.provisioned:
        raise Refused(errors.ALREADY_PROVISIONED)
    if not 1 <= len(serial) <= 32:
        raise Refused(errors.BAD_ARGUMENT, "serial must be 1..32 characters")
    for ch in serial:
        if not ("0" <= ch <= "9" or "A" <= ch <= "Z" or "a" <= ch <= "z" or ch in "-_."):
            raise Refused(errors.BAD_ARGUMENT, "serial may hold letters, digits and - _ .")
    if len(root_key) != 32 or len(secret) != 32:
        raise Refused(errors.BAD_ARGUMENT, "keys are 32 bytes")
    authority = d.authority or build_authority(d, serial, root_key, secret)
    if authority is None:
        raise Refused(errors.BAD_ARGUMENT, "the root key or the secret is not usable")
    try:
        d.provision_file.save({"serial": serial, "root": hexlify(root_key).decode(), "secret": hexlify(secret).decode()})
    except OSError as exc:
        raise Refused(errors.STORAGE_FAILURE, str(exc))
    d.authority = authority
    d.provisioned = True
    d.serial = serial
    d._log(ev.PROVISIONED, detail=serial)
    loop.outputs_update(d)
    return serial
