"""The center's visit form: every field checked here, so bad input is a form error."""

from __future__ import annotations

from django import forms

from .models import ExchangeOrder, Visit, handset_serial
from .visits import VisitRefused, client_of


class VisitForm(forms.Form):
    kind = forms.ChoiceField(choices=Visit.KINDS)
    serial = forms.CharField(max_length=32, validators=[handset_serial],
                             label="Handset serial")
    exchange = forms.ModelChoiceField(queryset=ExchangeOrder.objects.none(), required=False,
                                      label="Work order (handset exchange)")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                            max_length=2000)

    def __init__(self, center, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.center = center
        self.fields["exchange"].queryset = ExchangeOrder.objects.filter(center=center)

    def clean_serial(self):
        serial = self.cleaned_data["serial"].strip()
        try:
            self.client_ref = client_of(serial)
        except VisitRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return serial

    def clean(self):
        data = super().clean()
        order = data.get("exchange")
        if data.get("kind") == Visit.EXCHANGE:
            if order is None:
                self.add_error("exchange", "A handset is exchanged only with the provider's "
                                           "work order: choose it.")
            elif data.get("serial") and order.serial != data["serial"]:
                self.add_error("exchange", f"Work order {order.order_id} is for handset "
                                           f"{order.serial}, not {data['serial']}.")
        elif order is not None:
            self.add_error("exchange", "Only a handset exchange takes a work order here.")
        return data
