"""The portal's own tables. Money is not here: balances, invoices, payments and notices live in
the billing engine (the system of record); these tables hold who may see which account, what the
client accepted, appointments, e-mail delivery, payment submissions and code requests."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


class ClientAccount(models.Model):
    """A portal user's billing account (one user, one account reference)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="client")
    ref = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.ref} ({self.user.get_username()})"


def _token() -> str:
    return secrets.token_urlsafe(32)


class Invitation(models.Model):
    """Sent by the provider at account opening: the only way to sign up."""

    ref = models.CharField(max_length=16, unique=True)
    email = models.EmailField()
    token = models.CharField(max_length=64, unique=True, default=_token)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"invitation {self.ref} to {self.email}"


class TermsAcceptance(models.Model):
    TERMS = "terms"
    SERVICE_AGREEMENT = "service_agreement"
    DOCUMENTS = [(TERMS, "Terms & Conditions"), (SERVICE_AGREEMENT, "Service Agreement")]

    client = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="acceptances")
    document = models.CharField(max_length=24, choices=DOCUMENTS)
    version = models.CharField(max_length=32)
    accepted_at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "document", "version"],
                                               name="one_acceptance_per_version")]


class Appointment(models.Model):
    INSTALLATION = "installation"
    REMOVAL = "removal"
    VEHICLE_SWITCH = "vehicle_switch"
    KINDS = [(INSTALLATION, "Installation"), (REMOVAL, "Removal"),
             (VEHICLE_SWITCH, "Vehicle switch")]
    BOOKED, CANCELLED, DONE = "booked", "cancelled", "done"
    STATUSES = [(BOOKED, "Booked"), (CANCELLED, "Cancelled"), (DONE, "Done")]

    OK, NOT_DONE = "ok", "not_done"
    OUTCOMES = [(OK, "Done as booked"), (NOT_DONE, "Could not be done")]

    client = models.ForeignKey(ClientAccount, on_delete=models.CASCADE,
                               related_name="appointments")
    kind = models.CharField(max_length=16, choices=KINDS)
    at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=STATUSES, default=BOOKED)
    charged = models.BigIntegerField(default=0, help_text="cents charged by billing for changes")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # at a service center: a two-hour slot starting `at`, in one of the center's bays
    center = models.ForeignKey("centers.Center", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="appointments")
    bay = models.PositiveSmallIntegerField(null=True, blank=True)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                  blank=True, related_name="+")
    price_cents = models.PositiveIntegerField(null=True, blank=True,
                                              help_text="the center's agreed price at booking")
    vehicle_year = models.PositiveSmallIntegerField(null=True, blank=True)
    vehicle_make = models.CharField(max_length=40, blank=True)
    vehicle_model = models.CharField(max_length=40, blank=True)
    vin = models.CharField(max_length=17, blank=True)
    serial = models.CharField(max_length=64, blank=True, help_text="the handset's serial")
    # the signed work order file (lci-tool work-order format), kept so every print is the same
    work_order_id = models.CharField(max_length=24, blank=True)
    work_order_file = models.TextField(blank=True)
    work_order_expires = models.DateTimeField(null=True, blank=True)
    # completion at the center
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=12, choices=OUTCOMES, blank=True)
    completed_serial = models.CharField(max_length=64, blank=True)
    receipt = models.TextField(blank=True, help_text="the visit's receipt as the handset gave it")

    class Meta:
        ordering = ["at"]
        constraints = [
            # a bay holds one booked (or done) appointment per slot: the database refuses a
            # double booking however many requests race for it
            models.UniqueConstraint(
                fields=["center", "at", "bay"], name="one_appointment_per_bay_and_slot",
                condition=models.Q(status__in=["booked", "done"], center__isnull=False)),
        ]

    @property
    def vehicle(self) -> str:
        return " ".join(str(x) for x in (self.vehicle_year, self.vehicle_make,
                                         self.vehicle_model) if x)


class AppointmentChange(models.Model):
    """Every booking, move and cancellation, with the fee billing charged for it."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=16)
    from_at = models.DateTimeField(null=True)
    to_at = models.DateTimeField(null=True)
    charged = models.BigIntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True)


class MailDelivery(models.Model):
    """What every outgoing mail records of its sending: the status, the tries, the last error and
    when to try again (the mailer sends, retries and gives up by these fields)."""

    PENDING, SENT, FAILED, GIVEN_UP = "pending", "sent", "failed", "given_up"
    STATUSES = [(PENDING, "Pending"), (SENT, "Sent"), (FAILED, "Failed (retrying)"),
                (GIVEN_UP, "Failed (gave up)")]

    status = models.CharField(max_length=12, choices=STATUSES, default=PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    next_try_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class NoticeDelivery(MailDelivery):
    """One billing notice's e-mail: sent once (its id is the Message-ID), retried on failure."""

    notice_id = models.BigIntegerField(unique=True)
    ref = models.CharField(max_length=16, db_index=True)
    to = models.EmailField()
    kind = models.CharField(max_length=32)
    subject = models.CharField(max_length=200)
    message_id = models.CharField(max_length=200)

    class Meta:
        verbose_name_plural = "notice deliveries"
        ordering = ["-notice_id"]


class OutboxMail(MailDelivery):
    """A mail the portal itself writes (an invitation, a password reset, a shipment's tracking
    number): queued first, then sent and retried exactly as the billing notices are. Its
    Message-ID is fixed when queued, so a resend is the same message to the recipient."""

    kind = models.CharField(max_length=32, db_index=True)
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    message_id = models.CharField(max_length=200, unique=True)

    class Meta:
        verbose_name = "outbox mail"
        ordering = ["-id"]

    def __str__(self):
        return f"{self.kind} to {self.to} ({self.status})"


class PaymentSubmission(models.Model):
    """A pay-now form, by its one-time key: a second submit of the same form pays nothing."""

    key = models.CharField(max_length=64, unique=True)
    ref = models.CharField(max_length=16)
    amount = models.BigIntegerField()
    status = models.CharField(max_length=16, default="submitted")
    decline_code = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField(auto_now_add=True)


class CodeRequest(models.Model):
    """A lockout code asked for in the portal: the request code typed and what was answered
    (the answer itself stays in billing's directive record)."""

    client = models.ForeignKey(ClientAccount, on_delete=models.CASCADE, related_name="code_requests")
    request = models.CharField(max_length=40)
    answered = models.BooleanField(default=False)
    reason = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True)
    at = models.DateTimeField(auto_now_add=True)


class HandsetReport(models.Model):
    """The handset's compliance state as it last reported it (written by the data link server,
    or by a technician's visit): the account page shows the latest."""

    serial = models.CharField(max_length=64, db_index=True)
    compliance = models.CharField(max_length=24)
    recall_deadline = models.DateTimeField(null=True, blank=True)
    display = models.CharField(max_length=80, blank=True)
    source = models.CharField(max_length=24, default="link")
    reported_at = models.DateTimeField()

    class Meta:
        ordering = ["-reported_at", "-id"]


class LoginFailure(models.Model):
    """Failed sign-ins, for throttling by user name and by address."""

    username = models.CharField(max_length=254, db_index=True)
    ip = models.GenericIPAddressField(null=True, db_index=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
