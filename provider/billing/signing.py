"""Adapters from the host key code to the outbox's signer interfaces.

`TokenMinter` wraps a signing key (the root key or a delegated key with the "billing" scope)
and host_tools.tokens.mint; `CodeDesk` wraps the provider master secret and
host_tools.codes.answer. Both are built from key files by `load_token_minter` /
`load_code_desk`; a key file that cannot be read is a BillingError (one line at the CLI).
"""

from __future__ import annotations

from host_tools import codes, keys, tokens

from .errors import BillingError


class TokenMinter:
    """directives.TokenSigner over host_tools.tokens.mint."""

    def __init__(self, signer, key_id: str):
        self._signer = signer
        self.key_id = key_id

    def mint(self, serial: str, action: str, args: dict, *, now: int, ttl: int) -> bytes:
        return tokens.mint(self._signer, serial, action, args, now=now, ttl=ttl)


class CodeDesk:
    """directives.CodeAnswerer over host_tools.codes.answer."""

    def __init__(self, master_secret: bytes):
        self._secret = master_secret

    def answer(self, serial: str, request: str, action: str, lockout: int | None = None) -> str:
        return codes.answer(self._secret, serial, request, action, lockout=lockout)

    def requested_action(self, request: str) -> str:
        """The action a request code was issued for (it says so in its first digit)."""
        return codes.describe_request(request)["action"]


def load_token_minter(path: str) -> TokenMinter:
    try:
        signer = keys.load_signer(path)
    except (OSError, ValueError) as exc:
        raise BillingError(f"{path}: cannot load the signing key: {exc}") from None
    return TokenMinter(signer, getattr(signer, "key_id", "root"))


def load_code_desk(path: str) -> CodeDesk:
    try:
        return CodeDesk(keys.load_master_secret(path))
    except (OSError, ValueError) as exc:
        raise BillingError(f"{path}: cannot load the master secret: {exc}") from None
