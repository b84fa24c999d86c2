"""Adapters from the security helper's host modules to the outbox's signer interfaces.

`TokenMinter` wraps a signing key (the root key or a delegated key with the "billing" scope)
and host_tools.tokens.mint; `CodeDesk` wraps the provider master secret and host_tools.codes.answer.
Both are built from key files by `load_token_minter` / `load_code_desk`. If the security modules
are missing, these raise BillingError: directives then stay `pending` in the outbox.
"""

from __future__ import annotations

import importlib

from .errors import BillingError


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BillingError(f"{name} is not available ({exc}): directives stay pending") from None


class TokenMinter:
    """directives.TokenSigner over host_tools.tokens.mint."""

    def __init__(self, signer, key_id: str):
        self._signer = signer
        self.key_id = key_id
        self._tokens = _module("host_tools.tokens")

    def mint(self, serial: str, action: str, args: dict, *, now: int, ttl: int) -> bytes:
        return self._tokens.mint(self._signer, serial, action, args, now=now, ttl=ttl)


class CodeDesk:
    """directives.CodeAnswerer over host_tools.codes.answer."""

    def __init__(self, master_secret: bytes):
        self._secret = master_secret
        self._codes = _module("host_tools.codes")

    def answer(self, serial: str, request: str, action: str) -> str:
        return self._codes.answer(self._secret, serial, request, action)

    def requested_action(self, request: str) -> str:
        """The action a request code was issued for (it says so in its first digit)."""
        return self._codes.describe_request(request)["action"]


def load_token_minter(path: str) -> TokenMinter:
    keys = _module("host_tools.keys")
    loader = getattr(keys, "load_signer", None)
    if loader is None:
        raise BillingError("host_tools.keys has no load_signer(path): cannot read the signing key")
    try:
        signer = loader(path)
    except (OSError, ValueError) as exc:
        raise BillingError(f"{path}: cannot load the signing key: {exc}") from None
    return TokenMinter(signer, getattr(signer, "key_id", "root"))


def load_code_desk(path: str) -> CodeDesk:
    keys = _module("host_tools.keys")
    loader = getattr(keys, "load_master_secret", None)
    if loader is None:
        raise BillingError("host_tools.keys has no load_master_secret(path)")
    try:
        return CodeDesk(loader(path))
    except (OSError, ValueError) as exc:
        raise BillingError(f"{path}: cannot load the master secret: {exc}") from None
