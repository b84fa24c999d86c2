"""The center staff's pages for shipments and visits (a staff login sees only its own center:
another center's shipment or visit is a 404), and the signed visit upload of lci-tool."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from host_tools import visit_upload
from provider.web.centers.models import CenterStaff

from . import shipping, uploads
from .forms import VisitForm
from .models import ExchangeOrder, Shipment, Visit


def staff_center(request):
    """The signed-in user's center; anyone else is shown nothing (404)."""
    try:
        return request.user.center_staff.center
    except (CenterStaff.DoesNotExist, AttributeError):
        raise Http404 from None


@login_required
def shipments(request):
    center = staff_center(request)
    rows = center.shipments.prefetch_related("items")
    return render(request, "service/shipments.html", {"center": center, "shipments": rows})


@login_required
def shipment(request, pk: int):
    center = staff_center(request)
    found = get_object_or_404(Shipment.objects.prefetch_related("items"), pk=pk, center=center)
    return render(request, "service/shipment.html", {"center": center, "shipment": found})


@login_required
@require_POST
def shipment_received(request, pk: int):
    center = staff_center(request)
    found = get_object_or_404(Shipment, pk=pk, center=center)
    if shipping.mark_received(found, request.user):
        messages.success(request, f"Shipment {found.tracking_number} marked received.")
    else:
        messages.info(request, f"Shipment {found.tracking_number} was already received on "
                               f"{found.received_at:%d %b %Y %H:%M} UTC.")
    return redirect("service_shipment", pk=found.pk)


@login_required
def exchange_order_file(request, pk: int):
    """The handset-exchange work order's file, for `lci-tool work-order apply`."""
    center = staff_center(request)
    order = get_object_or_404(ExchangeOrder, pk=pk, center=center)
    if not order.file:
        raise Http404("this work order is not signed yet: call the compliance department")
    answer = HttpResponse(order.file, content_type="text/plain; charset=utf-8")
    answer["Content-Disposition"] = f'attachment; filename="{order.order_id}.toml"'
    return answer


@login_required
def visits(request):
    center = staff_center(request)
    return render(request, "service/visits.html",
                  {"center": center, "visits": center.visits.all()[:200]})


@login_required
def visit(request, pk: int):
    center = staff_center(request)
    found = get_object_or_404(Visit, pk=pk, center=center)
    return render(request, "service/visit.html", {"center": center, "visit": found})


@login_required
def visit_new(request):
    center = staff_center(request)
    form = VisitForm(center, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        made = Visit.objects.create(
            center=center, kind=data["kind"], serial=data["serial"], client_ref=form.client_ref,
            at=timezone.now(), source=Visit.PORTAL, recorded_by=request.user,
            exchange=data.get("exchange"), notes=data.get("notes", ""))
        messages.success(request, f"{made.get_kind_display()} of {made.serial} recorded for "
                                  f"client {made.client_ref}.")
        return redirect("service_visit", pk=made.pk)
    return render(request, "service/visit_new.html", {"center": center, "form": form})


@csrf_exempt  # authenticated by the center's key signature, not by a session
@require_POST
def upload(request):
    size = request.META.get("CONTENT_LENGTH") or "0"
    if not size.isdigit() or int(size) > uploads.MAX_BYTES:
        return JsonResponse({"error": f"an upload is at most {uploads.MAX_BYTES} bytes"},
                            status=413)
    data = request.read(int(size))
    try:
        filed, new = uploads.receive(
            data, request.headers.get(visit_upload.KEY_HEADER, ""),
            request.headers.get(visit_upload.SIGNATURE_HEADER, ""),
            request.build_absolute_uri())
    except uploads.UploadRefused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return JsonResponse({"visit": filed.pk, "client": filed.client_ref, "serial": filed.serial,
                         "records": filed.log_records, "filed": new,
                         "center": filed.center.code}, status=201 if new else 200)
