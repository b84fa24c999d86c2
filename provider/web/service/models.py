"""What a service center receives and does outside appointments: shipments of replacement
handsets and parts (each with its tracking number, each client's unit listed on its own line),
the handset-exchange work orders that name the unit that shipped, and the visits that need no
appointment (calibration, lockout service, handset exchange) with their receipt and verified
event log, filed with the client whose handset it is."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from provider.web.centers.models import Center
from provider.web.portal.models import OutboxMail

tracking_number = RegexValidator(r"^[A-Z0-9]{8,34}$", "a tracking number is 8 to 34 capital "
                                 "letters and digits, e.g. 1Z999AA10123456784")
handset_serial = RegexValidator(r"^[A-Za-z0-9-]{1,32}$", "a serial number is 1 to 32 letters, "
                                "digits and dashes")


class Shipment(models.Model):
    """Equipment sent to a center: one parcel, one tracking number, e-mailed to the center."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="shipments")
    carrier = models.CharField(max_length=40, default="UPS")
    tracking_number = models.CharField(max_length=34, unique=True, validators=[tracking_number])
    shipped_on = models.DateField()
    # a consolidated shipment carries the equipment of one day's appointments
    for_day = models.DateField(null=True, blank=True)
    mail = models.ForeignKey(OutboxMail, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", help_text="the tracking-number e-mail")
    received_at = models.DateTimeField(null=True, blank=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-shipped_on", "-id"]

    def __str__(self):
        return f"{self.carrier} {self.tracking_number} to {self.center.code}"

    @property
    def consolidated(self) -> bool:
        return len({i.client_ref for i in self.items.all() if i.client_ref}) > 1


class ShipmentItem(models.Model):
    """One line of a shipment: a handset (by serial) or a part, labelled for its client."""

    HANDSET, PART = "handset", "part"
    KINDS = [(HANDSET, "Replacement handset"), (PART, "Part")]

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=8, choices=KINDS)
    serial = models.CharField(max_length=32, blank=True, validators=[handset_serial],
                              help_text="a handset's serial number")
    description = models.CharField(max_length=120, blank=True)
    quantity = models.PositiveSmallIntegerField(default=1)
    client_ref = models.CharField(max_length=16, blank=True,
                                  help_text="the client's account this unit is labelled for")

    class Meta:
        ordering = ["client_ref", "id"]
        constraints = [models.UniqueConstraint(
            fields=["serial"], condition=~models.Q(serial=""), name="a_handset_ships_once")]

    def __str__(self):
        what = f"handset {self.serial}" if self.kind == self.HANDSET else self.description
        return f"{what} for {self.client_ref or 'stock'}"


class ExchangeOrder(models.Model):
    """The provider's work order for a handset exchange: the client's handset comes out, the
    unit that shipped (its serial) goes in. Without one no handset is exchanged."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="exchange_orders")
    order_id = models.CharField(max_length=40, unique=True)
    client_ref = models.CharField(max_length=16)
    serial = models.CharField(max_length=32, help_text="the handset taken out")
    unit = models.OneToOneField(ShipmentItem, on_delete=models.PROTECT,
                                related_name="exchange_order", help_text="the unit that shipped")
    token = models.TextField(blank=True, help_text="the signed work-order token (hex)")
    file = models.TextField(blank=True, help_text="the work-order file for lci-tool "
                                                  "work-order apply")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.order_id}: {self.serial} -> {self.unit.serial}"


class Visit(models.Model):
    """A visit without appointment, recorded by the center in the portal or uploaded by the
    technician's tool (its receipt and the event log, verified again here)."""

    CALIBRATION, LOCKOUT, EXCHANGE = "calibration", "lockout", "handset_exchange"
    KINDS = [(CALIBRATION, "Calibration"), (LOCKOUT, "Lockout service"),
             (EXCHANGE, "Handset exchange")]
    PORTAL, UPLOAD = "portal", "upload"

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="visits")
    kind = models.CharField(max_length=16, choices=KINDS)
    serial = models.CharField(max_length=32, db_index=True, validators=[handset_serial])
    client_ref = models.CharField(max_length=16, db_index=True)
    at = models.DateTimeField()
    source = models.CharField(max_length=8, default=PORTAL)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    exchange = models.ForeignKey(ExchangeOrder, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="visits")
    notes = models.TextField(blank=True, max_length=2000)
    receipt = models.JSONField(null=True, blank=True)
    log = models.TextField(blank=True, help_text="the event log as uploaded (JSON Lines)")
    log_records = models.PositiveIntegerField(default=0)
    log_first = models.BigIntegerField(null=True, blank=True)
    log_last = models.BigIntegerField(null=True, blank=True)
    log_head = models.CharField(max_length=64, blank=True)
    # the upload's content (receipt and log): the same upload again is the same visit
    digest = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.serial} at {self.center.code}"
