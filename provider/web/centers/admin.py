"""The provider staff's admin for service centers: the center with its hours, staff, documents
(expired ones flagged) and price list; a list filter shows the centers that cannot book."""

from django.contrib import admin
from django.utils import timezone

from .models import Center, CenterDocument, CenterPrice, CenterStaff, OpeningHours


class HoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


class StaffInline(admin.TabularInline):
    model = CenterStaff
    extra = 0
    raw_id_fields = ("user",)


class DocumentInline(admin.TabularInline):
    model = CenterDocument
    extra = 0
    fields = ("kind", "reference", "received_on", "expires_on", "state")
    readonly_fields = ("state",)

    @admin.display(description="state")
    def state(self, obj):
        if obj.pk is None:
            return ""
        return "EXPIRED" if obj.expired(timezone.now().date()) else "valid"


class PriceInline(admin.TabularInline):
    model = CenterPrice
    extra = 0


@admin.register(Center)
class CenterAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "city", "state", "bays", "rating", "can_book",
                    "expired_documents")
    search_fields = ("name", "code", "city")
    inlines = [HoursInline, StaffInline, DocumentInline, PriceInline]

    @admin.display(description="can book", boolean=True)
    def can_book(self, obj):
        return not obj.blocking_documents(timezone.now().date())

    @admin.display(description="expired documents")
    def expired_documents(self, obj):
        return ", ".join(d.get_kind_display() for d in obj.expired_documents(
            timezone.now().date())) or "—"


@admin.register(CenterDocument)
class CenterDocumentAdmin(admin.ModelAdmin):
    list_display = ("center", "kind", "reference", "received_on", "expires_on", "expired")
    list_filter = ("kind",)
    ordering = ("expires_on",)

    @admin.display(boolean=True, description="expired")
    def expired(self, obj):
        return obj.expired(timezone.now().date())
