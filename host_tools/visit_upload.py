"""Pushing a visit to the provider's server: the receipt and the verified event log, signed
with the center's delegated key.

The body is one JSON document (FORMAT): the server's URL it is meant for, the key id, the time
it was signed, the kind of visit, the handset's serial, the receipt and the log file's text.
The signature (Ed25519, the delegated key the tool already holds for the visit) covers the
body's exact bytes and travels in a header; the server checks it against the public key it
registered for the center, checks the log's hash chain again, and files the visit with the
client whose handset it is. The same receipt and log uploaded again is the same visit (the
server answers with it and stores nothing new), so a retry after a lost answer is safe; a
body signed for another server, or longer ago than the server's window, is refused.

    upload(url, signer, kind=..., receipt=..., log_text=...) -> the server's answer (dict)
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request

FORMAT = "lci-visit-upload/1"
KEY_HEADER = "X-LCI-Key-Id"
SIGNATURE_HEADER = "X-LCI-Signature"
KINDS = ("calibration", "lockout", "handset_exchange")
TRIES = 3  # a connection that fails is tried again with the same body (idempotent)


class UploadError(Exception):
    """The upload did not go through; str() is the one line to print (the server's own, when it
    answered). `refused` is True when the server answered and said no."""

    def __init__(self, text: str, refused: bool = False):
        super().__init__(text)
        self.refused = refused


def content_digest(receipt: dict, log_text: str) -> str:
    """What makes two uploads the same visit: the receipt and the log, nothing else."""
    canonical = json.dumps(receipt, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode() + b"\n" + log_text.encode()).hexdigest()


def body(url: str, key_id: str, kind: str, serial: str, receipt: dict, log_text: str,
         signed_at: int, log_format: str = "jsonl") -> bytes:
    return json.dumps({"format": FORMAT, "url": url, "key_id": key_id, "signed_at": signed_at,
                       "kind": kind, "serial": serial, "receipt": receipt, "log": log_text,
                       "log_format": log_format}, sort_keys=True, default=str).encode()


def signed_request(url: str, signer, *, kind: str, receipt: dict, log_text: str,
                   log_format: str = "jsonl", now: int | None = None) -> urllib.request.Request:
    key_id = getattr(signer, "key_id", None)
    if not key_id or not getattr(signer, "certificate", b""):  # the root key has no certificate
        raise UploadError("--upload needs the center's delegated key (--key CENTER.key), "
                          "not the provider's root key")
    if kind not in KINDS:
        raise UploadError(f"unknown visit kind {kind!r}: {', '.join(KINDS)}")
    data = body(url, key_id, kind, str(receipt.get("serial") or ""), receipt, log_text,
                int(time.time()) if now is None else now, log_format)
    return urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", KEY_HEADER: key_id,
        SIGNATURE_HEADER: signer.sign(data).hex()})


def send(request: urllib.request.Request, timeout: float = 30.0) -> dict:
    """POST a signed upload; connection failures are tried again (the same body)."""
    last = None
    for _ in range(TRIES):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                text = json.loads(exc.read() or b"{}").get("error")
            except (ValueError, AttributeError):
                text = None
            raise UploadError(f"the server refused the upload: "
                              f"{text or f'HTTP {exc.code} {exc.reason}'}", refused=True) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = getattr(exc, "reason", None) or exc
    raise UploadError(f"cannot reach {request.full_url}: {last}")


def upload(url: str, signer, *, kind: str, receipt: dict, log_text: str,
           log_format: str = "jsonl", timeout: float = 30.0) -> dict:
    if not url.startswith(("http://", "https://")):
        raise UploadError(f"--upload {url}: expected an http:// or https:// URL")
    return send(signed_request(url, signer, kind=kind, receipt=receipt, log_text=log_text,
                               log_format=log_format), timeout)
