"""The demo's shipment (`make serve`): a consolidated shipment to the demo service center —
a replacement handset for each of two demo clients and a bag of mouthpieces — its tracking
number e-mailed (printed on the console), and the handset-exchange work order for the first
client's unit when a compliance key is configured."""

from __future__ import annotations

from datetime import timedelta

TRACKING = "1Z777LCI0100000001"


def add_shipment(clients: list[tuple[str, str, str]], today) -> dict | None:
    """Ship to the first service center (None when the demo has none). `clients` are the
    demo's (login, status, ref) rows; `today` the demo's date."""
    from provider.web.centers.models import Center

    from . import shipping

    center = Center.objects.order_by("pk").first()
    if center is None:
        return None
    refs = {status: ref for _, status, ref in clients}
    first, second = refs.get("recall"), refs.get("active")
    items = [{"kind": "handset", "serial": "LCI7-DEMO51", "client_ref": first or ""},
             {"kind": "handset", "serial": "LCI7-DEMO52", "client_ref": second or ""},
             {"kind": "part", "description": "mouthpieces (bag of 25)", "quantity": 1,
              "client_ref": second or ""}]
    shipment = shipping.ship(center, TRACKING, items, shipped_on=today - timedelta(days=1),
                             for_day=today + timedelta(days=1))
    order = None
    unit = shipment.items.get(serial="LCI7-DEMO51")
    if unit.client_ref:
        from provider.web.portal import billing
        serial = billing.account(unit.client_ref)["serial"]
        order = shipping.exchange_order(unit, serial)
    return {"center": center, "shipment": shipment, "exchange_order": order}


def welcome_lines(made: dict | None, url: str) -> list[str]:
    if not made:
        return []
    shipment = made["shipment"]
    lines = [f"  a shipment to {made['center'].name}: {shipment.carrier} "
             f"{shipment.tracking_number} (e-mailed to {made['center'].email}); the center's "
             f"staff see it at {url}center/shipments/{shipment.pk}/ and mark it received"]
    if made["exchange_order"] is not None:
        order = made["exchange_order"]
        lines.append(f"    handset exchange work order {order.order_id}: {order.serial} out, "
                     f"unit {order.unit.serial} in")
    return lines
