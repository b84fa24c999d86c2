"""Shipments to a center: made with their items in one transaction, the tracking number
e-mailed to the center through the retried outbox, marked received by the center's staff, and
the handset-exchange work order that names the unit that shipped."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from host_tools import keys, work_orders
from provider.web.portal import mailer

from .models import ExchangeOrder, Shipment, ShipmentItem


def ship(center, tracking_number: str, items: list[dict], *, carrier: str = "UPS",
         shipped_on: date | None = None, for_day: date | None = None,
         send_now: bool = True) -> Shipment:
    """A shipment of `items` (dicts of ShipmentItem fields) to `center`; its tracking number is
    queued for e-mail to the center at once (a failed send is retried by the mail worker)."""
    if not items:
        raise ValueError("a shipment holds at least one item")
    with transaction.atomic():
        shipment = Shipment(center=center, carrier=carrier, tracking_number=tracking_number,
                            shipped_on=shipped_on or timezone.localdate(), for_day=for_day)
        shipment.full_clean()
        shipment.save()
        for fields in items:
            item = ShipmentItem(shipment=shipment, **fields)
            item.full_clean(exclude=["shipment"])
            item.save()
    mail = mailer.queue("shipment", center.email, subject(shipment), body(shipment),
                        key=f"{shipment.pk}-{shipment.tracking_number}", send_now=send_now)
    Shipment.objects.filter(pk=shipment.pk).update(mail=mail)
    shipment.mail = mail
    return shipment


def subject(shipment: Shipment) -> str:
    return f"Shipment on its way: {shipment.carrier} {shipment.tracking_number}"


def body(shipment: Shipment) -> str:
    lines = [f"{shipment.center.name},", "",
             f"we shipped equipment to you on {shipment.shipped_on:%d %b %Y} by "
             f"{shipment.carrier}, tracking number {shipment.tracking_number}."]
    if shipment.consolidated:
        when = f" of {shipment.for_day:%d %b %Y}" if shipment.for_day else ""
        lines.append(f"It is a consolidated shipment for the appointments{when}: each client's "
                     f"unit is labelled separately.")
    lines += ["", "In this shipment:"]
    for item in shipment.items.all():
        what = (f"replacement handset {item.serial}" if item.kind == ShipmentItem.HANDSET
                else f"{item.quantity} x {item.description}")
        lines.append(f"  - {what}" + (f" (client {item.client_ref})" if item.client_ref else ""))
    lines += ["", "Mark it received in the service-center portal when it arrives. No equipment "
                  "is exchanged without a work order from us."]
    return "\n".join(lines) + "\n"


def mark_received(shipment: Shipment, user) -> bool:
    """Record the shipment as received (once: False when it already was)."""
    done = Shipment.objects.filter(pk=shipment.pk, received_at=None).update(
        received_at=timezone.now(), received_by=user)
    shipment.refresh_from_db()
    return bool(done)


def exchange_order(unit: ShipmentItem, serial: str, *, signer=None, now: int | None = None,
                   days: int = 30) -> ExchangeOrder:
    """The work order exchanging the client's handset `serial` for `unit` (a handset that
    shipped to the center). Signed (with `signer`, else the compliance key of the settings,
    when one is configured) by the same code as `lci-tool work-order issue`: its id names the
    unit that shipped, and its file is what `lci-tool work-order apply` reads."""
    if unit.kind != ShipmentItem.HANDSET or not unit.serial:
        raise ValueError("a handset exchange needs a replacement handset that shipped")
    if not unit.client_ref:
        raise ValueError(f"unit {unit.serial} is not labelled for a client")
    found = ExchangeOrder.objects.filter(unit=unit).first()
    if found is not None:
        return found
    order_id = f"HX-{unit.pk}-{unit.serial}"[:64]
    signer = signer or _compliance_signer()
    token, text = "", ""
    if signer is not None:
        with tempfile.TemporaryDirectory() as folder:
            path = work_orders.issue(signer, serial, "handset_exchange", order_id, "",
                                     Path(folder) / "wo.toml", days=days, now=now)
            text = path.read_text()
            token = work_orders.load(path)["token"].hex()
    return ExchangeOrder.objects.create(center=unit.shipment.center, order_id=order_id,
                                        client_ref=unit.client_ref, serial=serial, unit=unit,
                                        token=token, file=text)


def _compliance_signer():
    path = getattr(settings, "COMPLIANCE_SIGNING_KEY", "")
    return keys.load_signer(path) if path else None
