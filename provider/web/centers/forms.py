"""The forms of booking, rescheduling and completing an appointment at a center: every field
checked here (the VIN's check digit too), so bad input is a form error, never a 500."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from django import forms
from django.core.exceptions import ValidationError

from provider.web.portal.models import Appointment

from .models import Center
from .vehicles import clean_vin, clean_year

SLOT_FORMAT = "%Y-%m-%dT%H:%M"


def slot_value(at: datetime) -> str:
    return at.astimezone(UTC).strftime(SLOT_FORMAT)


class SlotField(forms.CharField):
    """A slot's start as the slot pickers send it (YYYY-MM-DDTHH:MM, UTC)."""

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        try:
            return datetime.strptime(text, SLOT_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise ValidationError("Choose one of the slots shown.") from None


class VehicleForm(forms.Form):
    vehicle_year = forms.IntegerField(label="Model year", min_value=0, max_value=9999)
    vehicle_make = forms.CharField(label="Make", max_length=40)
    vehicle_model = forms.CharField(label="Model", max_length=40)
    vin = forms.CharField(label="VIN", max_length=40)

    def __init__(self, *args, this_year: int = 2026, **kwargs):
        super().__init__(*args, **kwargs)
        self.this_year = this_year

    def clean_vehicle_year(self):
        return clean_year(self.cleaned_data["vehicle_year"], self.this_year)

    def clean_vin(self):
        return clean_vin(self.cleaned_data["vin"])

    def _printable(self, name):
        text = self.cleaned_data[name].strip()
        if not text or not text.isprintable():
            raise ValidationError("Type it as it is written on the vehicle.")
        return text

    def clean_vehicle_make(self):
        return self._printable("vehicle_make")

    def clean_vehicle_model(self):
        return self._printable("vehicle_model")

    def vehicle(self) -> dict:
        return {f: self.cleaned_data[f] for f in ("vehicle_year", "vehicle_make",
                                                   "vehicle_model", "vin")}


KINDS = Appointment.KINDS


class BookingForm(VehicleForm):
    """The client books: what, where, which slot, the vehicle."""

    kind = forms.ChoiceField(label="What", choices=KINDS)
    center = forms.ModelChoiceField(label="Service center", queryset=Center.objects.none(),
                                    empty_label=None)
    slot = SlotField(label="Slot (UTC)")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    field_order = ["kind", "center", "slot", "vehicle_year", "vehicle_make", "vehicle_model",
                   "vin"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = Center.objects.filter(active=True)


class StaffBookingForm(VehicleForm):
    """Center staff book for a client, at their own center."""

    ref = forms.CharField(label="Client account", max_length=16,
                          help_text="the account reference, e.g. A000012")
    kind = forms.ChoiceField(label="What", choices=KINDS)
    slot = SlotField(label="Slot (UTC)")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    field_order = ["ref", "kind", "slot", "vehicle_year", "vehicle_make", "vehicle_model", "vin"]

    def clean_ref(self):
        ref = self.cleaned_data["ref"].strip().upper()
        if not re.fullmatch(r"A\d{6}", ref):
            raise ValidationError("An account reference is A and six digits.")
        return ref


class MoveForm(forms.Form):
    slot = SlotField(label="New slot (UTC)")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class CompleteForm(forms.Form):
    completed_serial = forms.CharField(label="Handset serial", max_length=64, required=False)
    outcome = forms.ChoiceField(choices=Appointment.OUTCOMES, widget=forms.RadioSelect)
    receipt = forms.CharField(label="The visit's receipt", required=False,
                              widget=forms.Textarea(attrs={"rows": 6}), max_length=20_000)


class DayForm(forms.Form):
    day = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

    def day_or(self, default: date) -> date:
        if self.is_valid() and self.cleaned_data["day"]:
            return self.cleaned_data["day"]
        return default
