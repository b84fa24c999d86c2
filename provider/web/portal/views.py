"""The portal's pages. Each view finds the signed-in client's own account reference and never
takes one from the URL: an id in a URL (an invoice number, an appointment) is looked up within
that account, so another client's id is a 404."""

from __future__ import annotations

import functools
import secrets

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from protocol import coretime

from . import billing, mailer
from .billing import BillingError, moment, unix
from .forms import (
    CardForm,
    ChangeForm,
    CodeForm,
    PayForm,
    RescheduleForm,
    SignUpForm,
    TermsForm,
    as_utc,
)
from .models import (
    Appointment,
    AppointmentChange,
    ClientAccount,
    CodeRequest,
    HandsetReport,
    Invitation,
    NoticeDelivery,
    PaymentSubmission,
    TermsAcceptance,
)
from .throttle import client_ip


def _documents_accepted(client) -> bool:
    done = set(client.acceptances.values_list("document", "version"))
    return {(TermsAcceptance.TERMS, settings.TERMS_VERSION),
            (TermsAcceptance.SERVICE_AGREEMENT, settings.SERVICE_AGREEMENT_VERSION)} <= done


def client_view(view=None, *, terms=True):
    """Signed in, with a client account; and (unless `terms=False`) the documents accepted."""
    def wrap(fn):
        @login_required
        @functools.wraps(fn)
        def inner(request, *args, **kwargs):
            client = ClientAccount.objects.filter(user=request.user).first()
            if client is None:
                raise Http404("no client account for this user")
            if terms and not _documents_accepted(client):
                return redirect("terms")
            request.client = client
            return fn(request, *args, **kwargs)
        return inner
    return wrap(view) if view is not None else wrap


def _after_engine_action(ref: str):
    """The notices the engine just wrote for this account go out now (a failed send is retried
    by the worker, `lci-server web send-notices`)."""
    try:
        mailer.send_pending(ref=ref)
    except BillingError:
        pass


# ------------------------------------------------------------------ sign-up and the terms
@require_http_methods(["GET", "POST"])
def signup(request, token):
    invitation = Invitation.objects.filter(token=token).first()
    if invitation is None or invitation.accepted_at or invitation.expires_at < timezone.now():
        return render(request, "portal/invitation_invalid.html", status=404)
    User = get_user_model()
    user = User(username=invitation.email.lower(), email=invitation.email)
    form = SignUpForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                if User.objects.filter(username=user.username).exists():
                    form.add_error(None, "An account already uses this e-mail: sign in instead.")
                    raise IntegrityError
                user = form.save()
                ClientAccount.objects.create(user=user, ref=invitation.ref)
                invitation.accepted_at = timezone.now()
                invitation.save(update_fields=["accepted_at"])
        except IntegrityError:
            if not form.errors:
                form.add_error(None, "This invitation was already used: sign in instead.")
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("terms")
    return render(request, "portal/signup.html", {"form": form, "invitation": invitation})


@client_view(terms=False)
@require_http_methods(["GET", "POST"])
def terms(request):
    client = request.client
    form = TermsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ip = client_ip(request)
        agent = request.META.get("HTTP_USER_AGENT", "")[:300]
        for document, version in ((TermsAcceptance.TERMS, settings.TERMS_VERSION),
                                  (TermsAcceptance.SERVICE_AGREEMENT,
                                   settings.SERVICE_AGREEMENT_VERSION)):
            TermsAcceptance.objects.get_or_create(client=client, document=document,
                                                  version=version,
                                                  defaults={"ip": ip, "user_agent": agent})
        return redirect("account")
    with billing.engine() as e:
        policy = e.policy
    return render(request, "portal/terms.html", {
        "form": form, "accepted": client.acceptances.all(), "policy": policy,
        "terms_version": settings.TERMS_VERSION,
        "days": {"late_fee_hours": policy.late_fee_after // 3600,
                 "recall": policy.recall_after // coretime.DAY,
                 "lockout": policy.lockout_after_recall // coretime.DAY,
                 "lockout_only": policy.lockout_after // coretime.DAY,
                 "recall_reading": policy.collections_reading == "recall_then_lockout",
                 "change": policy.change_notice // coretime.DAY,
                 "reschedule_hours": policy.reschedule_fee_notice // 3600}})


# ------------------------------------------------------------------ the account
NEXT_STEP = {
    "awaiting_payment": "Pay your initial invoice to book your installation.",
    "past_due": "A payment failed. Replace your card or pay your balance now to avoid a late fee "
                "and an early service recall.",
    "recall": "Your interlock is in early service recall. Pay your balance in full before the "
              "lockout date.",
    "lockout": "Your interlock is locked out. Pay your balance in full, then get the code that "
               "clears the lockout here.",
    "returned": "Your device is returned. Pay any final balance; then your account can be closed.",
    "cancelled": "Your installation is cancelled. Pay any balance left; then your account can be "
                 "closed.",
    "closed": "Your account is closed. Your invoices and notices stay here.",
}


@client_view
def account(request):
    view = billing.account(request.client.ref)
    report = HandsetReport.objects.filter(serial=view["serial"]).first()
    step = NEXT_STEP.get(view["status"], "Nothing is due: your next payment is automatic.")
    if view["code_ready"]:
        step = ("Your balance is paid. Press B on the handset and type the request code it shows "
                "on the lockout code page to get your code.")
    upcoming = request.client.appointments.filter(status=Appointment.BOOKED)
    return render(request, "portal/account.html", {
        "a": view, "report": report, "next_step": step, "appointments": upcoming})


@client_view
def invoices(request):
    data = billing.statement(request.client.ref)
    return render(request, "portal/invoices.html", data)


@client_view
def invoice(request, number):
    data = billing.statement(request.client.ref)
    found = [i for i in data["invoices"] if i["number"] == number]
    if not found:
        raise Http404("no such invoice on your account")
    return render(request, "portal/invoice.html", {"inv": found[0]})


@client_view
def payments(request):
    return render(request, "portal/payments.html", billing.statement(request.client.ref))


@client_view
def notices(request):
    data = billing.statement(request.client.ref)
    deliveries = {d.notice_id: d for d in NoticeDelivery.objects.filter(ref=request.client.ref)}
    for n in data["notices"]:
        n["delivery"] = deliveries.get(n["id"])
    return render(request, "portal/notices.html", data)


# ------------------------------------------------------------------ money
@client_view
@require_http_methods(["GET", "POST"])
def pay(request):
    ref = request.client.ref
    view = billing.account(ref)
    form = PayForm(request.POST or None, balance=view["balance"],
                   initial={"key": secrets.token_hex(16)})
    declined = None
    if request.method == "POST" and form.is_valid():
        key = form.cleaned_data["key"]
        cents = form.cleaned_data["cents"]
        try:
            with transaction.atomic():
                submission = PaymentSubmission.objects.create(key=key, ref=ref, amount=cents)
        except IntegrityError:
            submission = PaymentSubmission.objects.get(key=key)
            if submission.ref != ref:
                raise Http404("no such payment") from None
            messages.info(request, "This payment was already submitted: it was not charged again.")
            return redirect("payments")
        try:
            with billing.engine() as e:
                out = e.pay(ref, amount=cents, key=f"{ref}:w{key}")
        except BillingError as exc:
            submission.status = "refused"
            submission.save(update_fields=["status"])
            form.add_error(None, str(exc))
        else:
            submission.status = out["status"]
            submission.decline_code = out.get("decline_code") or ""
            submission.save(update_fields=["status", "decline_code"])
            _after_engine_action(ref)
            if out["status"] == "succeeded":
                messages.success(request, "Payment received. Thank you.")
                return redirect("account")
            # a fresh form (a new one-time key) for the next try
            form = PayForm(balance=view["balance"], initial={"key": secrets.token_hex(16)})
            declined = out.get("decline_code") or "declined"
    return render(request, "portal/pay.html", {"form": form, "a": view, "declined": declined})


@client_view
@require_http_methods(["GET", "POST"])
def card(request):
    ref = request.client.ref
    form = CardForm(request.POST or None)
    with billing.engine() as e:
        effective = e.change_effective(ref, "payment_method")
    if request.method == "POST" and form.is_valid():
        try:
            with billing.engine() as e:
                before = len(billing.statement(ref)["payments"])
                out = e.set_payment_method(ref, form.cleaned_data["token"])
        except BillingError as exc:
            form.add_error(None, str(exc))
        else:
            _after_engine_action(ref)
            data = billing.statement(ref)
            charged = data["payments"][before:]
            if out["effective"] == "now":
                messages.success(request, "Your card is on file from now on.")
            else:
                messages.info(request, "Your new card was received less than 15 days before your "
                              "next billing date: it is used from "
                              f"{moment(out['effective']):%b %d, %Y %H:%M} UTC.")
            for p in charged:
                if p["status"] == "succeeded":
                    messages.success(request, f"Your new card was charged {_fmt(p['amount'])} for "
                                     f"the failed payment.")
                else:
                    messages.error(request, f"Your new card was declined ({p['decline_code']}).")
            return redirect("account")
    return render(request, "portal/card.html", {"form": form, "effective": effective,
                                                "effective_at": None if effective == "now"
                                                else moment(effective)})


def _fmt(cents):
    from provider.billing.money import fmt
    return fmt(cents)


@client_view
@require_http_methods(["GET", "POST"])
def changes(request):
    ref = request.client.ref
    view = billing.account(ref)
    initial = {"cycle_weeks": view["cycle_weeks"],
               "theft_protection": "on" if view["theft_protection"] else "off"}
    form = ChangeForm(request.POST or None, initial=initial)
    preview = None
    if request.method == "POST" and form.is_valid():
        weeks = form.cleaned_data["cycle_weeks"]
        plan = form.cleaned_data["theft_protection"]
        wanted = []
        if weeks != view["cycle_weeks"]:
            wanted.append("cycle_weeks")
        if plan != view["theft_protection"]:
            wanted.append("theft_protection")
        if not wanted:
            form.add_error(None, "Nothing to change.")
        else:
            with billing.engine() as e:
                preview = {w: e.change_effective(ref, w) for w in wanted}
            preview = {w: (None if v == "now" else moment(v)) for w, v in preview.items()}
            if request.POST.get("confirm") == "yes":
                try:
                    with billing.engine() as e:
                        if "cycle_weeks" in wanted:
                            e.set_cycle(ref, weeks)
                        if "theft_protection" in wanted:
                            e.set_theft_protection(ref, plan)
                except BillingError as exc:
                    form.add_error(None, str(exc))
                else:
                    _after_engine_action(ref)
                    messages.success(request, "Your change is recorded.")
                    return redirect("account")
    return render(request, "portal/changes.html", {"form": form, "a": view, "preview": preview})


# ------------------------------------------------------------------ the lockout code
@client_view
@require_http_methods(["GET", "POST"])
def lockout_code(request):
    ref = request.client.ref
    form = CodeForm(request.POST or None)
    code = None
    view = billing.account(ref)
    if request.method == "POST" and form.is_valid():
        request_code = form.cleaned_data["request"]
        record = CodeRequest(client=request.client, request=request_code, ip=client_ip(request))
        if view["balance"] > 0:
            record.reason = "balance not paid in full"
            form.add_error(None, f"Pay your balance in full first ({_fmt(view['balance'])}).")
        elif not settings.MASTER_SECRET_FILE:
            record.reason = "the portal has no master secret configured"
            form.add_error(None, "Codes cannot be given here right now: call us.")
        else:
            from provider.billing import directives as outbox
            from provider.billing.signing import load_code_desk
            try:
                with billing.engine() as e:
                    account_id = e.store.account_by_ref(ref).id
                    code = outbox.answer_code(e.conn, account_id, request_code,
                                              load_code_desk(settings.MASTER_SECRET_FILE), e.now)
            except BillingError as exc:
                record.reason = str(exc)[:300]
                form.add_error("request", str(exc))
            else:
                record.answered = True
        record.save()
    return render(request, "portal/lockout_code.html", {"form": form, "code": code, "a": view})


# ------------------------------------------------------------------ appointments
def _sync_installation(client, view):
    """The installation appointment is billing's (it prices moves): mirror it here."""
    at = view["appointment_at"]
    current = client.appointments.filter(kind=Appointment.INSTALLATION,
                                         status=Appointment.BOOKED).first()
    if at is not None and current is None:
        Appointment.objects.create(client=client, kind=Appointment.INSTALLATION, at=at)
    elif current is not None and at is None:
        current.status = Appointment.DONE if view["installed_at"] else Appointment.CANCELLED
        current.save(update_fields=["status", "updated_at"])
    elif current is not None and current.at != at:
        # moved in billing by another way (the back office): keep the center's bay if it is
        # free at the new time, else the booking loses its center and is booked again
        try:
            with transaction.atomic():
                current.at = at
                current.save(update_fields=["at", "updated_at"])
        except IntegrityError:
            current.center, current.bay = None, None
            current.save(update_fields=["at", "center", "bay", "updated_at"])


@client_view
def appointments(request):
    """The client's appointments; booking one is /appointments/book/ (a center and its slot)."""
    client = request.client
    view = billing.account(client.ref)
    _sync_installation(client, view)
    return render(request, "portal/appointments.html", {
        "a": view, "items": client.appointments.select_related("center").order_by("status", "at")})


def _appointment_quote(ref: str, kind: str, at) -> dict | None:
    """What an appointment on `at` will bill, from the engine: a removal bills the rest of the
    month in the first cycle and the removal service (removal_quote); a vehicle switch has no
    charge in the policy (None: nothing to show)."""
    if kind != Appointment.REMOVAL:
        return None
    with billing.engine() as e:
        quote = e.removal_quote(ref, unix(at))
    quote["now"] = False
    return quote


def _own_appointment(request, pk) -> Appointment:
    return get_object_or_404(Appointment, pk=pk, client=request.client)


@client_view
@require_http_methods(["GET", "POST"])
def reschedule(request, pk):
    appt = _own_appointment(request, pk)
    if appt.status != Appointment.BOOKED:
        raise Http404("this appointment is not booked")
    form = RescheduleForm(request.POST or None)
    quote = None
    ref = request.client.ref
    if request.method == "POST" and form.is_valid():
        at = as_utc(form.cleaned_data["at"])
        try:
            with billing.engine() as e:
                if at <= moment(e.now):
                    raise billing.InputError("reschedule", "to", "choose a time in the future")
                if appt.kind == Appointment.INSTALLATION:
                    quote = e.reschedule_quote(ref, unix(at))
                    quote["next_billing_at"] = moment(quote["next_billing_at"])
                    quote["now"] = True
                else:
                    quote = _appointment_quote(ref, appt.kind, at)
                if appt.center_id is not None:
                    from provider.web.centers import slots
                    slots.check_bookable(appt.center, at, moment(e.now), appt.kind, new=False)
            if request.POST.get("confirm") == "yes" and appt.center_id is not None:
                from provider.web.centers import booking
                charged = booking.move(appt, at)
                done = True
            elif request.POST.get("confirm") == "yes":
                with billing.engine() as e:
                    charged = 0
                    if appt.kind == Appointment.INSTALLATION:
                        cash = _paid_total(e, ref)
                        e.reschedule(ref, unix(at))
                        charged = _paid_total(e, ref) - cash
                    AppointmentChange.objects.create(appointment=appt, action="rescheduled",
                                                     from_at=appt.at, to_at=at, charged=charged)
                    appt.at, appt.charged = at, appt.charged + charged
                    appt.save(update_fields=["at", "charged", "updated_at"])
                done = True
            else:
                done = False
        except BillingError as exc:
            form.add_error(None, str(exc).split(": ")[-1])
            quote = None
        except ValueError as exc:  # the center's slot rules (SlotError)
            form.add_error(None, str(exc))
            quote = None
        else:
            if done:
                _after_engine_action(ref)
                messages.success(request, f"Moved to {at:%b %d, %Y %H:%M} UTC"
                                 + (f"; charged {_fmt(charged)}." if charged else "; no fee."))
                return redirect("appointments")
    free = []
    if appt.center_id is not None:
        from provider.web.centers import slots
        now = billing.now()
        free = slots.free_slots(appt.center, now.date(), 14, now)
    return render(request, "portal/reschedule.html", {"form": form, "appt": appt, "quote": quote,
                                                      "free": free})


def _paid_total(e, ref) -> int:
    a = e.store.account_by_ref(ref)
    return e.conn.execute("SELECT COALESCE(SUM(amount), 0) FROM payment WHERE account_id = ?"
                          " AND status = 'succeeded' AND kind != 'refund'", (a.id,)).fetchone()[0]


@client_view
@require_http_methods(["GET", "POST"])
def cancel(request, pk):
    appt = _own_appointment(request, pk)
    if appt.status != Appointment.BOOKED:
        raise Http404("this appointment is not booked")
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        credited = 0
        if appt.kind == Appointment.INSTALLATION:
            try:
                with billing.engine() as e:
                    credited = e.cancel_installation(request.client.ref)["credited"]
            except BillingError as exc:
                messages.error(request, str(exc))
                return redirect("appointments")
            _after_engine_action(request.client.ref)
        appt.status = Appointment.CANCELLED
        appt.save(update_fields=["status", "updated_at"])
        AppointmentChange.objects.create(appointment=appt, action="cancelled", from_at=appt.at)
        messages.success(request, "Appointment cancelled."
                         + (f" Credited {_fmt(credited)}." if credited else ""))
        return redirect("appointments")
    quote = error = None
    if appt.kind == Appointment.INSTALLATION:
        try:
            with billing.engine() as e:
                quote = e.cancellation_quote(request.client.ref)
        except BillingError as exc:
            error = str(exc)
    return render(request, "portal/cancel.html", {"appt": appt, "quote": quote, "error": error})


@client_view
@require_http_methods(["GET", "POST"])
def book(request):
    """The client books an installation, removal or vehicle switch: a center, one of its free
    two-hour slots, the vehicle; the price and the engine's fee are shown before confirming."""
    from provider.web.centers import booking, slots
    from provider.web.centers.forms import BookingForm, slot_value
    from provider.web.centers.models import Center

    client = request.client
    view = billing.account(client.ref)
    _sync_installation(client, view)
    now = view["now"]
    centers = Center.objects.filter(active=True)
    wanted = request.POST.get("center") or request.GET.get("center")
    center = centers.filter(pk=wanted).first() if wanted and str(wanted).isdigit() else None
    center = center or centers.first()
    initial = {"center": center.pk if center else None}
    if request.GET.get("kind") in dict(Appointment.KINDS):
        initial["kind"] = request.GET["kind"]
    form = BookingForm(request.POST or None, initial=initial, this_year=now.year)
    preview = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            if d["confirm"]:
                appt = booking.book(client, d["center"], d["kind"], d["slot"], form.vehicle(),
                                    request.user)
                _after_engine_action(client.ref)
                messages.success(request, f"{appt.get_kind_display()} booked at "
                                 f"{appt.center.name} on {appt.at:%b %d, %Y %H:%M} UTC"
                                 + (f"; charged {_fmt(appt.charged)}." if appt.charged else "."))
                return redirect("appointments")
            preview = booking.quote(client, d["center"], d["kind"], d["slot"])
            preview["center"], preview["at"] = d["center"], d["slot"]
            preview["kind"] = dict(Appointment.KINDS)[d["kind"]]
        except (slots.SlotError, BillingError) as exc:
            form.add_error(None, str(exc))
    free = slots.free_slots(center, now.date(), 14, now) if center else []
    blocking = center.blocking_documents(now.date()) if center else []
    return render(request, "portal/book.html", {
        "form": form, "preview": preview, "center": center, "centers": centers,
        "blocking": blocking, "free": [(slot_value(x["at"]), x) for x in free]})


def home(request):
    """Center staff land on their center's day; everyone else on the client account."""
    if request.user.is_authenticated and hasattr(request.user, "center_staff"):
        return redirect("center_day")
    return redirect("account")
