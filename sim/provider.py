"""The provider's side of a simulation: keys, tokens and keypad codes, all from the seed.

A simulated device needs a provider that can install it, service it and send it billing
directives. `Provider(seed, serial)` makes a root key, a master secret, and delegated
keys for a technician (calibrate, unlock, set_time, work_order) and the billing system
(billing), deterministically from the seed — so a scenario mints byte-identical tokens
on every run and under both runtimes (Ed25519 signatures are deterministic; token ids come
from the seed). It uses the real host tools (host_tools/keys.py, tokens.py, codes.py).
Never use these keys outside the simulator: anyone with the seed has them.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from host_tools import codes, keys, tokens
from protocol import coretime
from sim.hardware import seeded

DEFAULT_SERIAL = "LCI-SIM-0001"
TECHNICIAN_SCOPES = ("calibrate", "unlock", "set_time", "work_order")
YEAR = 366 * coretime.DAY


class Provider:
    def __init__(self, seed: int | str = 0, serial: str = DEFAULT_SERIAL, *, start_s: int = 0):
        rng = seeded(seed, "provider")
        self.serial = serial
        self.root = keys.RootKey(Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)))
        self.master = rng.randbytes(32)
        self._ids = seeded(seed, "token-ids")
        self.directives = tokens.DirectiveOrder()  # the billing directives' numbers (SPEC 9.4)
        expires = start_s + 20 * YEAR
        self.technician = self._delegate("tech-sim", TECHNICIAN_SCOPES, rng, start_s, expires)
        self.billing = self._delegate("billing-sim", ("billing",), rng, start_s, expires)

    def _delegate(self, key_id, scopes, rng, issued, expires) -> keys.DelegatedKey:
        private = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        public = private.public_key().public_bytes_raw()
        certificate = keys.certify(self.root, key_id, public, scopes, issued=issued, expires=expires)
        return keys.DelegatedKey(private, certificate, self.root.public_key)

    @classmethod
    def from_directory(cls, directory, serial: str = DEFAULT_SERIAL) -> Provider:
        """The provider whose keys `lci-tool keygen` wrote to `directory` (root.key, master.secret;
        tech.key and billing.key if present, else the root signs everything)."""
        directory = Path(directory)
        provider = cls.__new__(cls)
        provider.serial = serial
        provider.root = keys.load_root_key(directory / keys.ROOT_KEY_FILE)
        provider.master = keys.load_master_secret(directory / keys.MASTER_SECRET_FILE)
        provider._ids = seeded(provider.root.public_key.hex(), "token-ids")
        for name in ("technician", "billing"):
            path = directory / f"{name}.key"
            setattr(provider, name, keys.load_delegated_key(path) if path.exists() else provider.root)
        return provider

    def save(self, directory, *, overwrite: bool = False) -> dict:
        """Write the keys where lci-tool finds them: root.key, root.pub, master.secret,
        technician.key, billing.key (mode 0600). Returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "root_key": keys.save_root_key(directory / keys.ROOT_KEY_FILE, self.root, overwrite=overwrite),
            "root_public": keys.save_public_key(directory / keys.ROOT_PUBLIC_FILE, self.root.public_key,
                                                overwrite=overwrite),
            "master_secret": keys.save_master_secret(directory / keys.MASTER_SECRET_FILE, self.master,
                                                     overwrite=overwrite),
            "technician": keys.save_delegated_key(directory / "technician.key", self.technician,
                                                  overwrite=overwrite),
            "billing": keys.save_delegated_key(directory / "billing.key", self.billing, overwrite=overwrite),
        }
        return {name: str(path) for name, path in paths.items()}

    # -- the factory's side ---------------------------------------------------------------------
    def device_secret(self) -> bytes:
        return keys.derive_device_secret(self.master, self.serial)

    def identity(self) -> dict:
        """What a unit leaves the factory with (sim/core_adapter.py provisions from it)."""
        return {
            "serial": self.serial,
            "root_key": self.root.public_key.hex(),
            "device_secret": self.device_secret().hex(),
        }

    # -- tokens and codes ---------------------------------------------------------------------------
    def signer_for(self, action: str):
        if action in ("recall", "lockout", "clear"):
            return self.billing
        return self.technician

    def token(self, action: str, args: dict, *, now: int, session_nonce: bytes | None = None,
              ttl: int = 3600, signer=None) -> bytes:
        """A signed token for this unit; `now` in core seconds (the world's clock)."""
        signer = signer or self.signer_for(action)
        return tokens.mint(
            signer, self.serial, action, args, now=now, ttl=ttl,
            session_nonce=session_nonce, token_id=self._ids.randbytes(16),
        )

    def code(self, request: str, action: str = "unlock") -> str:
        """The provider's answer to a keypad request code (the client reads it out on the phone)."""
        lockout = self.directives.last(self.serial) if action == "clear" else None
        return codes.answer(self.master, self.serial, request, action, lockout=lockout)
