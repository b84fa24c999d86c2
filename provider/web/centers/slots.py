"""A center's two-hour slots and the bookings in them.

Slots start at the center's opening time on each weekday it opens and every two hours after,
while the slot ends by closing time (times are the server's, UTC). A slot holds as many booked
appointments as the center has bays: each booking takes a bay number, and the database's
unique (center, slot, bay) constraint refuses a second booking of a bay — so two requests racing
for the last bay cannot both win, on SQLite or PostgreSQL, whatever this process believes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.db import IntegrityError, transaction

from provider.web.portal.models import Appointment

from .models import Center

SLOT = timedelta(hours=2)
TAKEN = (Appointment.BOOKED, Appointment.DONE)


class SlotError(ValueError):
    """The slot cannot be booked: one line for the form."""


def day_slots(center: Center, day: date) -> list[datetime]:
    hours = next((h for h in center.hours.all() if h.weekday == day.weekday()), None)
    if hours is None:
        return []
    start = datetime.combine(day, hours.opens, tzinfo=UTC)
    end = datetime.combine(day, hours.closes, tzinfo=UTC)
    out = []
    while start + SLOT <= end:
        out.append(start)
        start += SLOT
    return out


def is_slot(center: Center, at: datetime) -> bool:
    return at in day_slots(center, at.astimezone(UTC).date())


def taken(center: Center, starts: list[datetime]) -> dict[datetime, int]:
    counts: dict[datetime, int] = {}
    for at in Appointment.objects.filter(center=center, at__in=starts,
                                         status__in=TAKEN).values_list("at", flat=True):
        counts[at] = counts.get(at, 0) + 1
    return counts


def free_slots(center: Center, first: date, days: int, after: datetime) -> list[dict]:
    """The slots of `days` days from `first` that start after `after`, with their free bays."""
    starts = [s for n in range(days) for s in day_slots(center, first + timedelta(days=n))
              if s > after]
    used = taken(center, starts)
    return [{"at": s, "free": center.bays - used.get(s, 0)} for s in starts
            if used.get(s, 0) < center.bays]


def check_bookable(center: Center, at: datetime, now: datetime, kind: str, *,
                   new: bool = True) -> int:
    """The center's agreed price for `kind` in cents, or SlotError saying why not. A new booking
    needs the center's agreement and insurance in force; moving a booked one does not."""
    if not center.active:
        raise SlotError(f"{center.name} is not taking appointments.")
    blocking = center.blocking_documents(now.date())
    if blocking and new:
        raise SlotError(f"{center.name} cannot take new bookings: {'; '.join(blocking)}.")
    price = center.prices.filter(kind=kind).first()
    if price is None:
        raise SlotError(f"{center.name} has no agreed price for this kind of work.")
    if at <= now:
        raise SlotError("Choose a slot in the future.")
    if not is_slot(center, at):
        raise SlotError(f"{at:%b %d, %Y %H:%M} is not one of {center.name}'s two-hour slots.")
    return price.cents


def take_bay(appointment: Appointment, center: Center, at: datetime) -> Appointment:
    """Put `appointment` (new or moving) into the slot at `at`, in the first free bay; saved.
    SlotError when every bay is taken. Call inside transaction.atomic()."""
    was = (appointment.center, appointment.at, appointment.bay)
    for bay in range(center.bays):
        appointment.center, appointment.at, appointment.bay = center, at, bay
        try:
            with transaction.atomic():
                appointment.save()
        except IntegrityError:
            continue
        return appointment
    appointment.center, appointment.at, appointment.bay = was
    raise SlotError(f"The slot {at:%b %d, %Y %H:%M} at {center.name} is full: choose another.")
