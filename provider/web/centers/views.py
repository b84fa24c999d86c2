"""The service center's pages. Each view finds the signed-in staff member's own center and
never takes one from the URL: an appointment id in a URL is looked up within that center, so
another center's id is a 404."""

from __future__ import annotations

import functools
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from provider.billing.money import fmt
from provider.web.portal import billing
from provider.web.portal.billing import BillingError
from provider.web.portal.models import Appointment, ClientAccount

from . import booking, completion, slots, workorders
from .forms import CompleteForm, DayForm, MoveForm, StaffBookingForm, slot_value
from .models import CenterStaff
from .slots import SlotError


def center_view(fn):
    """Signed in as the staff of a center: request.center is that center."""
    @login_required
    @functools.wraps(fn)
    def inner(request, *args, **kwargs):
        staff = CenterStaff.objects.select_related("center").filter(user=request.user).first()
        if staff is None:
            raise Http404("no service center for this user")
        request.center = staff.center
        return fn(request, *args, **kwargs)
    return inner


def _own(request, pk) -> Appointment:
    return get_object_or_404(Appointment.objects.select_related("client__user", "center"),
                             pk=pk, center=request.center)


@center_view
def day(request):
    now = billing.now()
    form = DayForm(request.GET or None)
    shown = form.day_or(now.date())
    items = (Appointment.objects.filter(center=request.center, at__date=shown)
             .select_related("client__user").order_by("at", "bay"))
    center = request.center
    return render(request, "centers/day.html", {
        "center": center, "day": shown, "form": form, "items": items, "now": now,
        "prev": shown - timedelta(days=1), "next": shown + timedelta(days=1),
        "blocking": center.blocking_documents(now.date()),
        "expired": center.expired_documents(now.date())})


@center_view
def profile(request):
    now = billing.now()
    center = request.center
    return render(request, "centers/profile.html", {
        "center": center, "today": now.date(), "documents": center.documents.all(),
        "prices": center.prices.all(), "hours": center.hours.all(),
        "blocking": center.blocking_documents(now.date())})


def _account(ref: str) -> dict | None:
    try:
        return billing.account(ref)
    except BillingError:
        return None


@center_view
def detail(request, pk):
    appt = _own(request, pk)
    order = error = None
    try:
        order = workorders.current(appt)
    except workorders.WorkOrderUnavailable as exc:
        error = str(exc)
    form = CompleteForm(initial={"outcome": Appointment.OK})
    return render(request, "centers/detail.html", {
        "center": request.center, "appt": appt, "a": _account(appt.client.ref), "order": order,
        "order_error": error, "form": form, "changes": appt.changes.order_by("at")})


@center_view
def work_order(request, pk):
    appt = _own(request, pk)
    try:
        order = workorders.current(appt)
    except workorders.WorkOrderUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("center_appointment", pk=appt.pk)
    return render(request, "centers/work_order.html", {
        "center": request.center, "appt": appt, "order": order,
        "token_hex": order["token"].hex(), "qr": workorders.qr_svg(order["token"])})


@center_view
def work_order_file(request, pk):
    appt = _own(request, pk)
    try:
        order = workorders.current(appt)
    except workorders.WorkOrderUnavailable as exc:
        raise Http404(str(exc)) from None
    response = HttpResponse(order["file"], content_type="application/toml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{order["id"]}.toml"'
    return response


@center_view
@require_http_methods(["POST"])
def complete(request, pk):
    appt = _own(request, pk)
    form = CompleteForm(request.POST)
    if form.is_valid():
        try:
            completion.complete(appt, serial=form.cleaned_data["completed_serial"],
                                outcome=form.cleaned_data["outcome"],
                                receipt=form.cleaned_data["receipt"], by=request.user)
        except (completion.CompletionError, BillingError) as exc:
            form.add_error(None, str(exc))
        else:
            _mail(appt.client.ref)
            messages.success(request, f"{appt.get_kind_display()} completed.")
            return redirect("center_appointment", pk=appt.pk)
    appt.refresh_from_db()
    return render(request, "centers/detail.html", {
        "center": request.center, "appt": appt, "a": _account(appt.client.ref),
        "order": None, "order_error": None, "form": form, "changes": appt.changes.order_by("at")},
        status=200)


def _mail(ref: str) -> None:
    from provider.web.portal import mailer
    try:
        mailer.send_pending(ref=ref)
    except BillingError:
        pass


@center_view
@require_http_methods(["GET", "POST"])
def book(request):
    center = request.center
    now = billing.now()
    form = StaffBookingForm(request.POST or None, this_year=now.year)
    preview = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        client = ClientAccount.objects.filter(ref=d["ref"]).first()
        if client is None:
            form.add_error("ref", "No client with this account reference has a portal account.")
        else:
            try:
                if d["confirm"]:
                    appt = booking.book(client, center, d["kind"], d["slot"], form.vehicle(),
                                        request.user)
                    _mail(client.ref)
                    messages.success(request, f"{appt.get_kind_display()} booked for "
                                     f"{client.ref}.")
                    return redirect("center_appointment", pk=appt.pk)
                preview = booking.quote(client, center, d["kind"], d["slot"])
            except (SlotError, BillingError) as exc:
                form.add_error(None, str(exc))
    free = slots.free_slots(center, now.date(), 14, now)
    return render(request, "centers/book.html", {
        "center": center, "form": form, "preview": preview,
        "free": [(slot_value(s["at"]), s) for s in free]})


@center_view
@require_http_methods(["GET", "POST"])
def reschedule(request, pk):
    appt = _own(request, pk)
    if appt.status != Appointment.BOOKED:
        raise Http404("this appointment is not booked")
    now = billing.now()
    form = MoveForm(request.POST or None)
    quote = None
    if request.method == "POST" and form.is_valid():
        at = form.cleaned_data["slot"]
        try:
            slots.check_bookable(appt.center, at, now, appt.kind, new=False)
            if appt.kind == Appointment.INSTALLATION:
                with billing.engine() as e:
                    quote = e.reschedule_quote(appt.client.ref, billing.unix(at))
                quote["now"] = True
            if form.cleaned_data["confirm"]:
                charged = booking.move(appt, at)
                _mail(appt.client.ref)
                messages.success(request, f"Moved to {at:%b %d, %Y %H:%M} UTC; the client was "
                                 + (f"charged {fmt(charged)}." if charged else "charged nothing."))
                return redirect("center_appointment", pk=appt.pk)
        except (SlotError, BillingError) as exc:
            form.add_error(None, str(exc))
            quote = None
    free = slots.free_slots(appt.center, now.date(), 14, now)
    return render(request, "centers/reschedule.html", {
        "center": request.center, "appt": appt, "form": form, "quote": quote,
        "free": [(slot_value(s["at"]), s) for s in free]})


@center_view
@require_http_methods(["GET", "POST"])
def cancel(request, pk):
    appt = _own(request, pk)
    if appt.status != Appointment.BOOKED:
        raise Http404("this appointment is not booked")
    error = None
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            credited = booking.cancel(appt)
        except BillingError as exc:
            error = str(exc)
        else:
            _mail(appt.client.ref)
            messages.success(request, "Appointment cancelled."
                             + (f" The client was credited {fmt(credited)}." if credited else ""))
            return redirect("center_day")
    quote = None
    if appt.kind == Appointment.INSTALLATION and error is None:
        try:
            with billing.engine() as e:
                quote = e.cancellation_quote(appt.client.ref)
        except BillingError as exc:
            error = str(exc)
    return render(request, "centers/cancel.html", {"center": request.center, "appt": appt,
                                                   "quote": quote, "error": error})
