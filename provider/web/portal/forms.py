"""The portal's forms: every field checked here, so bad input is a form error, never a 500."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.template import loader

TEST_CARDS = [("tok_visa", "Visa ending 4242 (test card: approved)"),
              ("tok_declined", "Test card: declined"),
              ("tok_insufficient_funds", "Test card: insufficient funds"),
              ("tok_expired", "Test card: expired")]


class SignUpForm(SetPasswordForm):
    """Choose a password for the invited e-mail address (Django's validators apply)."""


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's password reset, its mail queued in the retried outbox instead of sent directly
    (a mail server that is down delays the link, never loses it or fails the page)."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email,
                  to_email, html_email_template_name=None):
        from . import mailer
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        mailer.queue("password_reset", to_email, subject, body)


class ThrottledLoginForm(AuthenticationForm):
    """Django's sign-in form, refused while the user name or the address has failed too often."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "E-mail"

    def clean(self):
        from .throttle import blocked, record_failure
        username = (self.data.get("username") or "")[:254]
        if blocked(self.request, username):
            raise forms.ValidationError(
                "Too many failed sign-ins. Wait 15 minutes or reset your password.",
                code="throttled")
        try:
            return super().clean()
        except forms.ValidationError:
            record_failure(self.request, username)
            raise


class TermsForm(forms.Form):
    terms = forms.BooleanField(label="I accept the Terms & Conditions")
    service_agreement = forms.BooleanField(label="I accept the Service Agreement")


def dollars_to_cents(value: str) -> int:
    text = (value or "").strip().lstrip("$").replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise forms.ValidationError("Enter an amount in dollars, like 54.12.") from None
    if not amount.is_finite():
        raise forms.ValidationError("Enter an amount in dollars, like 54.12.")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise forms.ValidationError("Enter the amount to the cent (two decimals at most).")
    if cents <= 0:
        raise forms.ValidationError("Enter an amount above zero.")
    if cents > 10_000_000:
        raise forms.ValidationError("That amount is too large.")
    return int(cents)


class PayForm(forms.Form):
    FULL, PART = "full", "part"
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    how = forms.ChoiceField(choices=[(FULL, "The whole balance"), (PART, "Part of it")],
                            widget=forms.RadioSelect, initial=FULL)
    amount = forms.CharField(required=False, max_length=20, label="Amount ($)")

    def __init__(self, *args, balance: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.balance = balance

    def clean_key(self):
        key = self.cleaned_data["key"]
        if not re.fullmatch(r"[0-9a-f]{32}", key):
            raise forms.ValidationError("This form has expired: reload the page.")
        return key

    def clean(self):
        data = super().clean()
        if self.balance <= 0:
            raise forms.ValidationError("Nothing to pay: your balance is settled.")
        if data.get("how") == self.PART:
            cents = dollars_to_cents(data.get("amount", ""))
            if cents > self.balance:
                self.add_error("amount", "That is more than your balance.")
            data["cents"] = cents
        else:
            data["cents"] = self.balance
        return data


class CardForm(forms.Form):
    token = forms.CharField(max_length=128, label="Card",
                            widget=forms.Select(choices=TEST_CARDS),
                            help_text="The processor's card form returns a token; the portal never "
                                      "sees the card number.")

    def clean_token(self):
        token = self.cleaned_data["token"].strip()
        if not re.fullmatch(r"tok_[A-Za-z0-9_]{1,120}", token):
            raise forms.ValidationError("Not a card token from the processor.")
        return token


class ChangeForm(forms.Form):
    cycle_weeks = forms.TypedChoiceField(coerce=int, label="Billing cycle",
                                         choices=[(2, "Every 2 weeks"), (4, "Every 4 weeks"),
                                                  (8, "Every 8 weeks")])
    theft_protection = forms.TypedChoiceField(
        coerce=lambda v: v == "on", label="Theft protection plan",
        choices=[("on", "On"), ("off", "Off")])
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class CodeForm(forms.Form):
    request = forms.CharField(max_length=40, label="Request code shown on your handset")

    def clean_request(self):
        digits = re.sub(r"[\s-]", "", self.cleaned_data["request"])
        if not digits.isdigit() or not 6 <= len(digits) <= 20:
            raise forms.ValidationError("Type the digits shown on the handset after CODE REQUEST.")
        return digits


class WhenField(forms.DateTimeField):
    input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
    widget = forms.DateTimeInput(attrs={"type": "datetime-local"})


class RescheduleForm(forms.Form):
    at = WhenField(label="New date and time (UTC)")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


def as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
