"""Booking an appointment at a center, for the client (portal) and for center staff alike.

The installation appointment is billing's (the engine prices its moves): booking it at a center
moves billing's appointment to the chosen slot through the engine's `reschedule` (its fee rules:
under 48 h notice the fee, a second under-24 h move another rental cycle). The slot is taken
first (its own transaction: billing may share the database file, and SQLite has one writer),
so a full slot changes nothing in billing; when billing then refuses, the slot is given back.
A removal or a vehicle switch books only the slot (billing acts when the work is done)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from provider.web.portal import billing
from provider.web.portal.billing import BillingError, moment, unix
from provider.web.portal.models import Appointment, AppointmentChange, ClientAccount

from . import slots
from .models import Center
from .slots import SlotError


def quote(client: ClientAccount, center: Center, kind: str, at: datetime) -> dict:
    """What booking would cost, changing nothing: {"price" (the center's, cents), "fee" (the
    engine's reschedule quote for an installation, else None), "removal" (removal_quote)}.
    SlotError or BillingError when it cannot be booked."""
    view = billing.account(client.ref)
    now = view["now"]
    price = slots.check_bookable(center, at, now, kind)
    out = {"price": price, "fee": None, "removal": None, "serial": view["serial"]}
    with billing.engine() as e:
        if kind == Appointment.INSTALLATION:
            current = _installation(client)
            if view["installed_at"] is not None or view["appointment_at"] is None:
                raise SlotError("The device is installed already (or the installation was "
                                "cancelled): there is no installation to book.")
            if current is not None and current.center_id is not None:
                raise SlotError("Your installation is booked at a center already: reschedule it.")
            if at != view["appointment_at"]:
                fee = e.reschedule_quote(client.ref, unix(at))
                fee["next_billing_at"] = moment(fee["next_billing_at"])
                fee["now"] = True
                out["fee"] = fee
        else:
            if view["installed_at"] is None or view["removed_at"] is not None:
                raise SlotError("A removal or a vehicle switch is for an installed device.")
            if kind == Appointment.REMOVAL:
                removal = e.removal_quote(client.ref, unix(at))
                removal["now"] = False
                out["removal"] = removal
    return out


def _installation(client: ClientAccount) -> Appointment | None:
    return client.appointments.filter(kind=Appointment.INSTALLATION,
                                      status=Appointment.BOOKED).first()


def book(client: ClientAccount, center: Center, kind: str, at: datetime, vehicle: dict,
         by) -> Appointment:
    """Book it (see quote() for what it costs); returns the appointment. SlotError or
    BillingError when it cannot be booked, and then nothing changed."""
    quoted = quote(client, center, kind, at)
    appointment = _installation(client) if kind == Appointment.INSTALLATION else None
    before = None
    if appointment is None:
        appointment = Appointment(client=client, kind=kind)
    else:
        before = {f: getattr(appointment, f) for f in _RESTORED}
    appointment.price_cents = quoted["price"]
    appointment.serial = quoted["serial"]
    appointment.booked_by = by
    for field in ("vehicle_year", "vehicle_make", "vehicle_model", "vin"):
        setattr(appointment, field, vehicle[field])
    appointment.work_order_file, appointment.work_order_expires = "", None
    with transaction.atomic():
        slots.take_bay(appointment, center, at)
    charged = 0
    if kind == Appointment.INSTALLATION and (before is None or before["at"] != at):
        try:
            charged = _reschedule_in_billing(client.ref, at)
        except BillingError:
            _give_back(appointment, before)
            raise
    appointment.charged += charged
    appointment.save(update_fields=["charged"])
    AppointmentChange.objects.create(appointment=appointment, action="booked",
                                     from_at=before["at"] if before else None, to_at=at,
                                     charged=charged)
    return appointment


_RESTORED = ("at", "center", "bay", "price_cents", "serial", "booked_by", "vehicle_year",
             "vehicle_make", "vehicle_model", "vin", "work_order_file", "work_order_expires")


def _give_back(appointment: Appointment, before: dict | None) -> None:
    if before is None:
        appointment.delete()
        return
    for field, value in before.items():
        setattr(appointment, field, value)
    appointment.save()


def move(appointment: Appointment, at: datetime) -> int:
    """Reschedule a center appointment to another slot of its center; returns the cents billing
    charged (an installation's fee rules). SlotError or BillingError: nothing changed."""
    center = appointment.center
    slots.check_bookable(center, at, billing.now(), appointment.kind, new=False)
    before = {f: getattr(appointment, f) for f in _RESTORED}
    appointment.work_order_file, appointment.work_order_expires = "", None
    with transaction.atomic():
        slots.take_bay(appointment, center, at)
    charged = 0
    if appointment.kind == Appointment.INSTALLATION:
        try:
            charged = _reschedule_in_billing(appointment.client.ref, at)
        except BillingError:
            _give_back(appointment, before)
            raise
    appointment.charged += charged
    appointment.save(update_fields=["charged"])
    AppointmentChange.objects.create(appointment=appointment, action="rescheduled",
                                     from_at=before["at"], to_at=at, charged=charged)
    return charged


def _reschedule_in_billing(ref: str, at: datetime) -> int:
    with billing.engine() as e:
        cash = paid_total(e, ref)
        e.reschedule(ref, unix(at))
        return paid_total(e, ref) - cash


def paid_total(e, ref) -> int:
    a = e.store.account_by_ref(ref)
    return e.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM payment WHERE account_id = ?"
                          " AND status = 'succeeded' AND kind != 'refund'", (a.id,)).fetchone()[0]


__all__ = ["BillingError", "SlotError", "book", "cancel", "move", "quote"]


def cancel(appointment: Appointment) -> int:
    """Cancel it; an installation is cancelled in billing (its refund rule: rental beyond the
    first two weeks). Returns the cents credited (negative or 0)."""
    credited = 0
    if appointment.kind == Appointment.INSTALLATION:
        with billing.engine() as e:
            credited = e.cancel_installation(appointment.client.ref)["credited"]
    appointment.status = Appointment.CANCELLED
    appointment.save(update_fields=["status", "updated_at"])
    AppointmentChange.objects.create(appointment=appointment, action="cancelled",
                                     from_at=appointment.at)
    return credited
