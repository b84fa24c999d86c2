"""An appointment's work order: signed once by the provider's compliance key with the real
work-order code (host_tools.work_orders, as `lci-tool work-order issue` does), bound to the
handset's serial, kept with the appointment so every print shows the same order, and signed
again only when the kept one has expired. The print shows it as a QR code (segno, SVG) and as
the file text `lci-tool work-order apply` reads."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from host_tools import keys, work_orders
from protocol.coretime import EPOCH_UNIX
from provider.web.portal.models import Appointment

VALID_DAYS = 30


class WorkOrderUnavailable(RuntimeError):
    """No compliance key is configured, or the appointment lacks what the order binds to."""


def order_id(appointment: Appointment) -> str:
    return f"WO-{appointment.at:%y%m%d}-{appointment.pk:05d}"


def _signer():
    path = settings.COMPLIANCE_SIGNING_KEY
    if not path:
        raise WorkOrderUnavailable("no compliance key is configured (LCI_COMPLIANCE_KEY): "
                                   "call the compliance department")
    try:
        return keys.load_signer(path)
    except (OSError, ValueError) as exc:
        raise WorkOrderUnavailable(f"the compliance key cannot be loaded: {exc}") from None


def current(appointment: Appointment, *, now: datetime | None = None) -> dict:
    """The appointment's work order (signed now if it has none or the kept one expired):
    {"id", "order", "serial", "vehicle", "token" (bytes), "expires" (datetime), "file" (text)}."""
    now = now or datetime.now(UTC)
    if (appointment.work_order_file and appointment.work_order_expires is not None
            and appointment.work_order_expires > now):
        return _read(appointment.work_order_file)
    if not appointment.serial:
        raise WorkOrderUnavailable("the appointment has no handset serial to bind the order to")
    signer = _signer()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = work_orders.issue(signer, appointment.serial, appointment.kind,
                                     order_id(appointment), appointment.vin, Path(tmp) / "wo.toml",
                                     days=VALID_DAYS, now=int(now.timestamp()) - EPOCH_UNIX)
        except work_orders.WorkOrderError as exc:
            raise WorkOrderUnavailable(str(exc)) from None
        text = path.read_text()
    order = _read(text)
    appointment.work_order_id = order["id"]
    appointment.work_order_file = text
    appointment.work_order_expires = order["expires"]
    appointment.save(update_fields=["work_order_id", "work_order_file", "work_order_expires",
                                    "updated_at"])
    return order


def _read(text: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wo.toml"
        path.write_text(text)
        order = work_orders.load(path)
    order["expires"] = datetime.fromtimestamp(order["expires"] + EPOCH_UNIX, UTC)
    order["file"] = text
    return order


def qr_svg(token: bytes) -> str:
    """The token's hex as a QR code, an inline SVG element."""
    import segno

    return segno.make(token.hex().upper(), error="m", micro=False).svg_inline(
        scale=3, border=4, omitsize=False)
