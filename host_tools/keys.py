"""The provider's keys: the root Ed25519 key, delegated keys, the master secret, key files.

- The root key signs delegation certificates and, when it must, tokens directly. Its public
  key is written into every device at provisioning; its id (SHA-256(public key)[:8]) is in
  every token.
- A delegated key (a service center, a technician, the billing system) is an Ed25519 key
  pair with a certificate from the root: its key id, public key, scopes (protocol.tokens
  SCOPES: unlock, calibrate, set_time, billing, work_order) and expiry.
- The master secret (32 random bytes) derives each device's keypad secret:
  derive_device_secret(master, serial) = HKDF-SHA256(master, salt=None, info=serial), so
  the back office stores nothing per device.

Key files are written whole (temporary file, fsync, rename) with mode 0600, never over an
existing file unless asked, and a private key file readable by others is refused on load.
Formats: the root key is PKCS#8 PEM (optionally passphrase-encrypted); a delegated key and
the master secret are small JSON documents with a "format" tag; a root public key file is
64 hex digits and a newline.

The functions `lci-tool keygen`, `lci-tool delegate` and `lci-tool provision` call are
keygen(), delegate_to_file() and provision_fields().
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from host_tools import ed25519_host as ed25519
from protocol import coretime, signing, tokens

MASTER_SECRET_BYTES = 32
DEVICE_SECRET_BYTES = 32
DELEGATED_FORMAT = "lci777-delegated-key/1"
MASTER_FORMAT = "lci777-master-secret/1"

ROOT_KEY_FILE = "root.key"
ROOT_PUBLIC_FILE = "root.pub"
MASTER_SECRET_FILE = "master.secret"


class KeysError(ValueError):
    """A key, key file or key request that cannot be used; the message is one line for people."""




def core_now() -> int:
    """Now in core-epoch seconds (2020-01-01T00:00:00Z), as tokens and certificates use."""
    return coretime.from_unix(time.time())


def _raw_public(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _raw_private(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


# ---- keys ------------------------------------------------------------------------------------
class RootKey:
    """The provider's root key: signs certificates, and any token directly."""

    key_id = tokens.ROOT_KEY_ID
    certificate = b""
    scopes = tokens.SCOPES
    expires = None

    def __init__(self, private_key: Ed25519PrivateKey):
        self._private = private_key
        self.public_key = _raw_public(private_key)
        self.root_public_key = self.public_key
        self.root_id = tokens.root_id(self.public_key)

    @classmethod
    def generate(cls) -> RootKey:
        return cls(Ed25519PrivateKey.generate())

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(bytes(data))

    def may_sign(self, action: str) -> bool:
        return action in tokens.ACTION_SCOPES

    def __repr__(self) -> str:
        return f"RootKey({self.public_key.hex()[:16]}…)"


class DelegatedKey:
    """A delegated key pair with the root's certificate for it."""

    def __init__(self, private_key: Ed25519PrivateKey, certificate: bytes, root_public_key: bytes):
        cert = _parse_certificate(certificate)
        if cert.public_key != _raw_public(private_key):
            raise KeysError("the certificate is for another key pair")
        if not ed25519.verify(root_public_key, cert.signed, cert.signature):
            raise KeysError("the certificate is not signed by this root key")
        self._private = private_key
        self.certificate = bytes(certificate)
        self.key_id = cert.key_id.decode()
        self.public_key = cert.public_key
        self.scopes = cert.scopes
        self.issued = cert.issued
        self.expires = cert.expires
        self.root_public_key = bytes(root_public_key)
        self.root_id = tokens.root_id(root_public_key)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(bytes(data))

    def may_sign(self, action: str) -> bool:
        scope = tokens.ACTION_SCOPES.get(action)
        return scope is not None and scope in self.scopes

    def __repr__(self) -> str:
        return f"DelegatedKey({self.key_id}, scopes={','.join(self.scopes)}, expires={self.expires})"


def _parse_certificate(certificate: bytes) -> tokens.Certificate:
    try:
        return tokens.parse_certificate(certificate)
    except tokens.TokenError as exc:
        raise KeysError(f"not a delegation certificate: {exc.detail}") from None


def certify(root: RootKey, key_id: str, public_key: bytes, scopes, *, issued: int, expires: int) -> bytes:
    """The root's certificate for a delegated public key (its holder keeps the private key)."""
    if not ed25519.valid_public_key(public_key):
        raise KeysError("not a valid Ed25519 public key")
    if expires <= issued:
        raise KeysError("a delegation must expire after it is issued")
    try:
        body = signing.certificate_body(key_id, bytes(public_key), tuple(scopes), issued, expires)
    except ValueError as exc:
        raise KeysError(str(exc)) from None
    return body + root.sign(body)


def delegate(root: RootKey, key_id: str, scopes, *, issued: int, expires: int) -> DelegatedKey:
    """A new delegated key pair for `key_id` with `scopes`, certified by `root` until `expires`."""
    private = Ed25519PrivateKey.generate()
    cert = certify(root, key_id, _raw_public(private), scopes, issued=issued, expires=expires)
    return DelegatedKey(private, cert, root.public_key)


# ---- secrets ---------------------------------------------------------------------------------
def new_master_secret() -> bytes:
    return secrets.token_bytes(MASTER_SECRET_BYTES)


def derive_device_secret(master: bytes, serial: str) -> bytes:
    """The device's keypad secret: HKDF-SHA256(master, salt=None, info=serial), 32 bytes."""
    if len(master) < 16:
        raise KeysError("the master secret is too short")
    if not serial:
        raise KeysError("a serial is needed")
    return HKDF(
        algorithm=hashes.SHA256(), length=DEVICE_SECRET_BYTES, salt=None, info=serial.encode()
    ).derive(bytes(master))


# ---- files -----------------------------------------------------------------------------------
def write_private_file(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` whole, mode 0600 (temporary file, fsync, rename)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeysError(f"{path} exists: not overwriting a key file")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def read_private_file(path: str | os.PathLike) -> bytes:
    """The bytes of a key file; refused if missing or readable by group or others."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeysError(f"{path}: no such key file") from None
    if os.name == "posix" and mode & 0o077:
        raise KeysError(f"{path} is readable by others: chmod 600 it first")
    return path.read_bytes()


def save_root_key(path, root: RootKey, *, passphrase: bytes | None = None, overwrite: bool = False) -> Path:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = root._private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return write_private_file(path, pem, overwrite=overwrite)


def load_root_key(path, *, passphrase: bytes | None = None) -> RootKey:
    data = read_private_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise KeysError(f"{path}: not a readable root key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeysError(f"{path}: not an Ed25519 key")
    return RootKey(key)


def save_public_key(path, public_key: bytes, *, overwrite: bool = False) -> Path:
    return write_private_file(path, public_key.hex().encode() + b"\n", overwrite=overwrite)


def load_public_key(path) -> bytes:
    try:
        raw = bytes.fromhex(Path(path).read_text().strip())
    except (OSError, ValueError) as exc:
        raise KeysError(f"{path}: not a public key file ({exc})") from None
    if not ed25519.valid_public_key(raw):
        raise KeysError(f"{path}: not a valid Ed25519 public key")
    return raw


def save_delegated_key(path, key: DelegatedKey, *, overwrite: bool = False) -> Path:
    doc = {
        "format": DELEGATED_FORMAT,
        "key_id": key.key_id,
        "scopes": list(key.scopes),
        "expires": key.expires,
        "private_key": _raw_private(key._private).hex(),
        "certificate": key.certificate.hex(),
        "root_public_key": key.root_public_key.hex(),
    }
    return write_private_file(path, (json.dumps(doc, indent=1) + "\n").encode(), overwrite=overwrite)


def load_delegated_key(path) -> DelegatedKey:
    try:
        doc = json.loads(read_private_file(path))
        if doc.get("format") != DELEGATED_FORMAT:
            raise ValueError(f"format is not {DELEGATED_FORMAT}")
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(doc["private_key"]))
        cert = bytes.fromhex(doc["certificate"])
        root_public = bytes.fromhex(doc["root_public_key"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeysError(f"{path}: not a delegated key file ({exc})") from None
    return DelegatedKey(private, cert, root_public)


def load_signer(path, *, passphrase: bytes | None = None) -> RootKey | DelegatedKey:
    """The root key or a delegated key from its file (the format tells which)."""
    data = read_private_file(path)
    if data.lstrip().startswith(b"-----BEGIN"):
        return load_root_key(path, passphrase=passphrase)
    return load_delegated_key(path)


def save_master_secret(path, secret: bytes, *, overwrite: bool = False) -> Path:
    if len(secret) != MASTER_SECRET_BYTES:
        raise KeysError(f"a master secret is {MASTER_SECRET_BYTES} bytes")
    doc = {"format": MASTER_FORMAT, "secret": secret.hex()}
    return write_private_file(path, (json.dumps(doc) + "\n").encode(), overwrite=overwrite)


def load_master_secret(path) -> bytes:
    try:
        doc = json.loads(read_private_file(path))
        if doc.get("format") != MASTER_FORMAT:
            raise ValueError(f"format is not {MASTER_FORMAT}")
        secret = bytes.fromhex(doc["secret"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeysError(f"{path}: not a master secret file ({exc})") from None
    if len(secret) != MASTER_SECRET_BYTES:
        raise KeysError(f"{path}: a master secret is {MASTER_SECRET_BYTES} bytes")
    return secret


# ---- what the CLI calls ----------------------------------------------------------------------
def keygen(directory, *, passphrase: bytes | None = None, overwrite: bool = False) -> dict:
    """`lci-tool keygen`: a new provider root key and master secret in `directory`.

    Writes root.key (PKCS#8 PEM), root.pub (hex) and master.secret, all mode 0600, and
    refuses to replace existing files unless overwrite. Returns {"root_key", "root_public",
    "master_secret": Path, "root_public_key": bytes, "root_id": hex str}.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / ROOT_KEY_FILE, directory / ROOT_PUBLIC_FILE, directory / MASTER_SECRET_FILE]
    if not overwrite:
        for path in paths:
            if path.exists():
                raise KeysError(f"{path} exists: not overwriting a key file")
    root = RootKey.generate()
    save_root_key(paths[0], root, passphrase=passphrase, overwrite=overwrite)
    save_public_key(paths[1], root.public_key, overwrite=overwrite)
    save_master_secret(paths[2], new_master_secret(), overwrite=overwrite)
    return {
        "root_key": paths[0],
        "root_public": paths[1],
        "master_secret": paths[2],
        "root_public_key": root.public_key,
        "root_id": root.root_id.hex(),
    }


def delegate_to_file(root_path, out_path, key_id: str, scopes, *, days: int, now: int | None = None,
                     passphrase: bytes | None = None, overwrite: bool = False) -> DelegatedKey:
    """`lci-tool delegate`: a new delegated key for `key_id` with `scopes`, valid `days` days."""
    if days <= 0:
        raise KeysError("a delegation lasts at least one day")
    issued = core_now() if now is None else now
    root = load_root_key(root_path, passphrase=passphrase)
    key = delegate(root, key_id, scopes, issued=issued, expires=issued + days * coretime.DAY)
    save_delegated_key(out_path, key, overwrite=overwrite)
    return key


def provision_fields(serial: str, root_public_key: bytes, master_secret: bytes) -> dict:
    """`lci-tool provision`: the PROVISION request fields for a device in factory mode.

    {"serial": str, "root_key": 32 bytes, "device_secret": 32 bytes}; the device secret is
    derived, so nothing per device needs to be stored by the provider."""
    if not isinstance(serial, str) or not 0 < len(serial.encode()) <= 64:
        raise KeysError("a serial is 1..64 bytes of text")
    if not ed25519.valid_public_key(root_public_key):
        raise KeysError("not a valid root public key")
    return {
        "serial": serial,
        "root_key": bytes(root_public_key),
        "device_secret": derive_device_secret(master_secret, serial),
    }
