"""The server's side of `lci-tool service --upload`: a visit's receipt and event log, signed
with a center's delegated key (host_tools/visit_upload.py says what is signed).

Each check refuses with one line and stores nothing: the key id must be a center's registered
key, unexpired; the signature must verify against that center's public key; the body must be
signed for this URL and within WINDOW_S of now (a body captured and sent again later is a
replay); the log's chain must verify again here; the handset must be a client's. A filed visit also
records the handset's state as the visit left it (the client's account page shows it). The same
receipt and log again is the visit already filed (the answer repeats it): retrying is safe."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import IntegrityError, transaction
from django.utils import timezone

from host_tools import visit_upload
from provider.web.centers.models import Center
from provider.web.portal import handsets

from .models import Visit
from .visits import VisitRefused, check_log, client_of

WINDOW_S = 600  # a signed upload is taken this long after (or before) it was signed
MAX_BYTES = 32 * 1024 * 1024


class UploadRefused(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


def receive(data: bytes, key_id: str, signature_hex: str, url: str) -> tuple[Visit, bool]:
    """File an upload: (the visit, True) when filed now, (the visit, False) when it already was.
    Raises UploadRefused(status, one line)."""
    center = _authenticate(data, key_id, signature_hex)
    doc = _document(data)
    if doc.get("url") != url:
        raise UploadRefused(400, f"the upload is signed for {doc.get('url')!r}, not {url}")
    signed_at = doc.get("signed_at")
    now = int(timezone.now().timestamp())
    if not isinstance(signed_at, int) or abs(now - signed_at) > WINDOW_S:
        when = (datetime.fromtimestamp(signed_at, UTC).isoformat(timespec="seconds")
                if isinstance(signed_at, int) and 0 <= signed_at < 2 ** 33 else "?")
        raise UploadRefused(409, f"the upload was signed at {when}, more than {WINDOW_S // 60} "
                                 f"minutes from now: a replayed or delayed upload (upload the "
                                 f"visit again to sign it anew)")
    kind, serial, receipt, log_text = (doc.get("kind"), doc.get("serial"), doc.get("receipt"),
                                       doc.get("log"))
    if kind not in dict(Visit.KINDS):
        raise UploadRefused(400, f"unknown visit kind {kind!r}")
    if not isinstance(receipt, dict) or not isinstance(log_text, str):
        raise UploadRefused(400, "the upload needs a receipt (object) and a log (text)")
    if not isinstance(serial, str) or not serial or receipt.get("serial") != serial:
        raise UploadRefused(400, "the receipt's handset serial is missing or not the upload's")
    digest = visit_upload.content_digest(receipt, log_text)
    filed = Visit.objects.filter(digest=digest).first()
    if filed is not None:
        return _same(filed, center)
    try:
        client = client_of(serial)
        report = check_log(serial, log_text, doc.get("log_format", "jsonl"))
    except VisitRefused as exc:
        raise UploadRefused(422, str(exc)) from None
    try:
        with transaction.atomic():
            visit = Visit.objects.create(
                center=center, kind=kind, serial=serial, client_ref=client,
                at=timezone.now(), source=Visit.UPLOAD, receipt=receipt, log=log_text,
                log_records=report["records"], log_first=report["first"],
                log_last=report["last"], log_head=report["head_hash"] or "", digest=digest)
            _report_state(serial, receipt.get("after"))
    except IntegrityError:  # the same upload, filed by a concurrent retry
        return _same(Visit.objects.get(digest=digest), center)
    return visit, True


def _report_state(serial: str, after) -> None:
    """The handset as the visit left it, for the client's account page (compliance, screen)."""
    if isinstance(after, dict) and isinstance(after.get("compliance"), str):
        state = {"compliance": after["compliance"][:24]}
        if isinstance(after.get("display"), list):
            state["display"] = [str(x) for x in after["display"][:2]]
        handsets.record(serial, state, reported_at=timezone.now(), source="visit")


def _same(visit: Visit, center: Center) -> tuple[Visit, bool]:
    if visit.center_id != center.pk:
        raise UploadRefused(409, "this visit was already filed by another center")
    return visit, False


def _authenticate(data: bytes, key_id: str, signature_hex: str) -> Center:
    if not key_id:
        raise UploadRefused(401, f"the upload carries no {visit_upload.KEY_HEADER} header")
    center = Center.objects.filter(key_id=key_id, active=True).exclude(key_public="").first()
    if center is None:
        raise UploadRefused(403, f"key {key_id[:40]!r} is no active center's registered key")
    if center.key_expires is not None and center.key_expires < timezone.now():
        raise UploadRefused(403, f"center {center.code}'s key {key_id} expired on "
                                 f"{center.key_expires:%Y-%m-%d}")
    try:
        signature = bytes.fromhex(signature_hex or "")
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(center.key_public)).verify(signature,
                                                                                    data)
    except (ValueError, InvalidSignature):
        raise UploadRefused(403, f"the upload is not signed by center {center.code}'s "
                                 f"registered key {key_id}") from None
    return center


def _document(data: bytes) -> dict:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise UploadRefused(400, "the upload is not a JSON document") from None
    if not isinstance(doc, dict) or doc.get("format") != visit_upload.FORMAT:
        raise UploadRefused(400, f"the upload is not a {visit_upload.FORMAT} document")
    return doc
