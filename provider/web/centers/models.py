"""Service centers: who they are (address, opening hours, bays), the key they sign with, who works
there, the onboarding documents the provider holds for them, the prices agreed with them, and
their rating. Appointments at a center are the portal's `Appointment` rows with a `center`."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from protocol.tokens import SCOPES

WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"),
            (5, "Saturday"), (6, "Sunday")]

# the kinds of work an appointment books (and the price list prices)
INSTALLATION, REMOVAL, VEHICLE_SWITCH = "installation", "removal", "vehicle_switch"
WORK_KINDS = [(INSTALLATION, "Installation"), (REMOVAL, "Removal"),
              (VEHICLE_SWITCH, "Vehicle switch")]


def validate_scopes(text: str) -> None:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCOPES]
    if unknown or not names:
        raise ValidationError(f"expected a comma list of: {', '.join(SCOPES)}")


hex_public_key = RegexValidator(r"^[0-9a-f]{64}$", "expected 64 lower-case hex digits "
                                "(the Ed25519 public key)")


class Center(models.Model):
    """An authorized service center. Its delegated key (`lci-tool delegate`) is recorded by its
    public part, key id and scopes only: the private key stays at the center."""

    name = models.CharField(max_length=120)
    code = models.SlugField(max_length=24, unique=True, help_text="short unique name, e.g. mpls-1")
    street = models.CharField(max_length=160)
    city = models.CharField(max_length=80)
    state = models.CharField(max_length=2)
    postal_code = models.CharField(max_length=10)
    email = models.EmailField(help_text="where shipments' tracking numbers are e-mailed")
    phone = models.CharField(max_length=32, blank=True)
    bays = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="appointments one two-hour slot can hold")
    key_id = models.CharField(max_length=32, blank=True,
                              help_text="the delegated key's id (lci-tool delegate --id)")
    key_public = models.CharField(max_length=64, blank=True, validators=[hex_public_key])
    key_scopes = models.CharField(max_length=80, blank=True, validators=[validate_scopes],
                                  help_text="comma list, as given to lci-tool delegate --scopes")
    key_expires = models.DateTimeField(null=True, blank=True)
    # the share of completed appointments done as booked, in percent (None: none completed yet)
    rating = models.PositiveSmallIntegerField(null=True, blank=True,
                                              validators=[MaxValueValidator(100)])
    rated_appointments = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.city}, {self.state})"

    @property
    def address(self) -> str:
        return f"{self.street}, {self.city}, {self.state} {self.postal_code}"

    @property
    def scopes(self) -> list[str]:
        return [s.strip() for s in self.key_scopes.split(",") if s.strip()]

    def expired_documents(self, today: date) -> list[CenterDocument]:
        return [d for d in self.documents.all() if d.expired(today)]

    def blocking_documents(self, today: date) -> list[str]:
        """Why the center cannot take new bookings today (empty: it can): the agreement and the
        insurance binder must be on file and unexpired."""
        held = {d.kind: d for d in self.documents.all()}
        reasons = []
        for kind in CenterDocument.REQUIRED_FOR_BOOKING:
            label = dict(CenterDocument.KINDS)[kind]
            doc = held.get(kind)
            if doc is None:
                reasons.append(f"no {label} on file")
            elif doc.expired(today):
                reasons.append(f"the {label} expired on {doc.expires_on:%b %d, %Y}")
        return reasons


class OpeningHours(models.Model):
    """A center's hours on one weekday (no row: closed that day). Slots are two hours from
    `opens` while they end by `closes`."""

    center = models.ForeignKey(Center, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["weekday"]
        verbose_name_plural = "opening hours"
        constraints = [
            models.UniqueConstraint(fields=["center", "weekday"], name="one_hours_per_weekday"),
            models.CheckConstraint(condition=models.Q(closes__gt=models.F("opens")),
                                   name="closes_after_opens"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"


class CenterStaff(models.Model):
    """A staff login belongs to exactly one center and sees only that center."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="center_staff")
    center = models.ForeignKey(Center, on_delete=models.CASCADE, related_name="staff")

    class Meta:
        verbose_name_plural = "center staff"

    def __str__(self):
        return f"{self.user.get_username()} at {self.center.code}"


class CenterDocument(models.Model):
    """An onboarding document the provider holds for a center, with its expiry date."""

    AGREEMENT, W9, INSURANCE = "agreement", "w9", "insurance"
    KINDS = [(AGREEMENT, "service center agreement"), (W9, "W-9"),
             (INSURANCE, "insurance binder")]
    REQUIRED_FOR_BOOKING = (AGREEMENT, INSURANCE)

    center = models.ForeignKey(Center, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=12, choices=KINDS)
    reference = models.CharField(max_length=120, blank=True,
                                 help_text="the document's number or file name")
    received_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True, help_text="empty: does not expire")

    class Meta:
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["center", "kind"],
                                               name="one_document_of_each_kind")]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.center.code}"

    def expired(self, today: date) -> bool:
        return self.expires_on is not None and self.expires_on < today


class CenterPrice(models.Model):
    """The price agreed with a center for one kind of work, in integer cents."""

    center = models.ForeignKey(Center, on_delete=models.CASCADE, related_name="prices")
    kind = models.CharField(max_length=16, choices=WORK_KINDS)
    cents = models.PositiveIntegerField(validators=[MaxValueValidator(10_000_00)])

    class Meta:
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["center", "kind"],
                                               name="one_price_per_kind")]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.center.code}: {self.cents} cents"
