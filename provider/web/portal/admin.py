"""The provider staff's admin (staff-only, Django's): clients, invitations, acceptances,
appointments, e-mail deliveries (failures visible, resend), code requests, handset reports."""

from django.contrib import admin

from provider.billing.money import fmt

from . import billing, invitations, mailer
from .models import (
    Appointment,
    AppointmentChange,
    ClientAccount,
    CodeRequest,
    HandsetReport,
    Invitation,
    NoticeDelivery,
    OutboxMail,
    TermsAcceptance,
)


@admin.register(ClientAccount)
class ClientAccountAdmin(admin.ModelAdmin):
    list_display = ("ref", "user", "billing_status", "balance", "created_at")
    search_fields = ("ref", "user__username", "user__email")

    def _view(self, obj):
        try:
            return billing.account(obj.ref)
        except billing.BillingError:
            return None

    @admin.display(description="billing status")
    def billing_status(self, obj):
        view = self._view(obj)
        return view["status"] if view else "—"

    @admin.display(description="balance")
    def balance(self, obj):
        view = self._view(obj)
        return fmt(view["balance"]) if view else "—"


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("ref", "email", "created_at", "expires_at", "accepted_at")
    search_fields = ("ref", "email")
    readonly_fields = ("token",)
    actions = ["resend"]

    @admin.action(description="Send the invitation e-mail again")
    def resend(self, request, queryset):
        mails = [invitations.send(invitation, request)
                 for invitation in queryset.filter(accepted_at=None)]
        sent = sum(m.status == OutboxMail.SENT for m in mails)
        self.message_user(request, f"queued {len(mails)}, sent {sent} (the rest are retried)")


@admin.register(TermsAcceptance)
class TermsAcceptanceAdmin(admin.ModelAdmin):
    list_display = ("client", "document", "version", "accepted_at", "ip")
    list_filter = ("document", "version")


class ChangeInline(admin.TabularInline):
    model = AppointmentChange
    extra = 0
    readonly_fields = ("action", "from_at", "to_at", "charged", "at")


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    list_display = ("client", "kind", "at", "status", "charged")
    list_filter = ("kind", "status")
    inlines = [ChangeInline]


@admin.register(NoticeDelivery)
class NoticeDeliveryAdmin(admin.ModelAdmin):
    list_display = ("notice_id", "ref", "to", "kind", "status", "attempts", "sent_at",
                    "next_try_at", "last_error")
    list_filter = ("status", "kind")
    search_fields = ("ref", "to", "message_id")
    actions = ["send_again"]

    @admin.action(description="Retry sending now")
    def send_again(self, request, queryset):
        mailer.retry_now(queryset)
        result = mailer.send_pending()
        self.message_user(request, f"sent {result['sent']}, failed {result['failed']}")


@admin.register(OutboxMail)
class OutboxMailAdmin(admin.ModelAdmin):
    """The portal's own mail; the body is not shown (it may carry a sign-up or reset link)."""

    list_display = ("id", "kind", "to", "subject", "status", "attempts", "sent_at",
                    "next_try_at", "last_error")
    list_filter = ("status", "kind")
    search_fields = ("to", "message_id")
    fields = readonly_fields = ("kind", "to", "subject", "message_id", "status", "attempts",
                                "last_error", "next_try_at", "sent_at", "created_at")
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry sending now")
    def send_again(self, request, queryset):
        mailer.retry_now(queryset)
        result = mailer.send_outbox(only=queryset.values_list("pk", flat=True))
        self.message_user(request, f"sent {result['sent']}, failed {result['failed']}")


@admin.register(CodeRequest)
class CodeRequestAdmin(admin.ModelAdmin):
    list_display = ("client", "request", "answered", "reason", "ip", "at")
    list_filter = ("answered",)


@admin.register(HandsetReport)
class HandsetReportAdmin(admin.ModelAdmin):
    list_display = ("serial", "compliance", "recall_deadline", "source", "reported_at")
    search_fields = ("serial",)
