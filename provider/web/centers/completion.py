"""Completing an appointment at the center: the handset's serial, the outcome and the visit's
receipt are recorded, billing moves through the engine's Python API (an installation starts the
billing schedule, a removal returns the device; a vehicle switch bills nothing), and the
center's rating is recomputed from its completed appointments."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from provider.web.portal import billing
from provider.web.portal.models import Appointment

from .models import Center

MAX_RECEIPT = 20_000


class CompletionError(ValueError):
    """The appointment cannot be completed so: one line for the form."""


def complete(appointment: Appointment, *, serial: str, outcome: str, receipt: str, by) -> None:
    if appointment.status != Appointment.BOOKED:
        raise CompletionError("This appointment is not open: it was completed or cancelled.")
    if outcome not in dict(Appointment.OUTCOMES):
        raise CompletionError("Choose the outcome.")
    serial = serial.strip()
    if outcome == Appointment.OK:
        if serial != appointment.serial:
            raise CompletionError(f"The work order is for handset {appointment.serial}, not "
                                  f"{serial or 'an empty serial'}: check the handset's label.")
        if not receipt.strip():
            raise CompletionError("Paste the visit's receipt (lci-tool's output).")
    if len(receipt) > MAX_RECEIPT:
        raise CompletionError(f"The receipt is longer than {MAX_RECEIPT} characters.")
    if outcome == Appointment.OK:
        # billing first: when the engine refuses, nothing here changes
        with billing.engine() as e:
            if appointment.kind == Appointment.INSTALLATION:
                e.install(appointment.client.ref)
            elif appointment.kind == Appointment.REMOVAL:
                e.remove_device(appointment.client.ref)
    with transaction.atomic():
        appointment.status = Appointment.DONE
        appointment.outcome = outcome
        appointment.completed_serial = serial
        appointment.receipt = receipt
        appointment.completed_at = timezone.now()
        appointment.completed_by = by
        appointment.save()
        refresh_rating(appointment.center)


def refresh_rating(center: Center) -> None:
    """The share of the center's completed appointments done as booked, in whole percent."""
    done = Appointment.objects.filter(center=center, status=Appointment.DONE)
    total = done.count()
    ok = done.filter(outcome=Appointment.OK).count()
    center.rated_appointments = total
    center.rating = None if total == 0 else (ok * 100 + total // 2) // total
    center.save(update_fields=["rating", "rated_appointments"])
