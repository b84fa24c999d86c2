"""The provider staff's admin for shipments (with their items), exchange work orders and
visits; a new shipment's tracking number is e-mailed to its center through the outbox."""

from django.contrib import admin

from provider.web.portal import mailer

from . import shipping
from .models import ExchangeOrder, Shipment, ShipmentItem, Visit


class ItemInline(admin.TabularInline):
    model = ShipmentItem
    extra = 1


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = ("tracking_number", "carrier", "center", "shipped_on", "for_day",
                    "received_at")
    list_filter = ("center", "received_at")
    search_fields = ("tracking_number", "items__serial", "items__client_ref")
    readonly_fields = ("mail", "received_at", "received_by")
    inlines = [ItemInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        shipment = form.instance
        if not change and shipment.mail_id is None:
            mail = mailer.queue("shipment", shipment.center.email, shipping.subject(shipment),
                                shipping.body(shipment),
                                key=f"{shipment.pk}-{shipment.tracking_number}")
            Shipment.objects.filter(pk=shipment.pk).update(mail=mail)


@admin.register(ExchangeOrder)
class ExchangeOrderAdmin(admin.ModelAdmin):
    list_display = ("order_id", "center", "client_ref", "serial", "unit", "created_at")
    search_fields = ("order_id", "serial", "unit__serial", "client_ref")


@admin.register(Visit)
class VisitAdmin(admin.ModelAdmin):
    list_display = ("at", "kind", "center", "serial", "client_ref", "source", "log_records")
    list_filter = ("kind", "source", "center")
    search_fields = ("serial", "client_ref")
    exclude = ("log",)
