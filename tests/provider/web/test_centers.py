"""Appointments at service centers through the pages: a client books a center's free slot, the
price per the center's agreement and the engine's fees; bays, documents and slots refuse what
they must; staff see only their own center; the work order is signed, bound to the handset and
re-printable; completing the appointment moves billing."""

from __future__ import annotations

import re

import pytest

from host_tools import tokens
from provider.web.centers.vehicles import clean_vin
from provider.web.portal.models import Appointment

from .conftest import VEHICLE, VIN, T

pytestmark = pytest.mark.django_db


def _book(web, center, kind, slot, **more):
    data = {"center": center.pk, "kind": kind, "slot": slot, **VEHICLE, **more}
    return web.post("/appointments/book/", data)


def _errors(response) -> str:
    return " ".join(re.findall(r'<ul class="errorlist[^>]*>(.*?)</ul>', response.content.decode(),
                               re.S))


def test_vin_rules():
    assert clean_vin(" 1hgcm82633a004352 ") == VIN
    from django.core.exceptions import ValidationError
    for bad, says in (("1HGCM82633A00435", "17 characters"),
                      ("1HGCM82633A0O4352", "except I, O and Q"),
                      ("1HGCM82633A004353", "check digit")):
        with pytest.raises(ValidationError, match=says):
            clean_vin(bad)


def test_a_client_books_a_removal_in_a_free_slot_with_the_engines_quote(books, make_client,
                                                                        make_center):
    center = make_center()
    ref = books.open()
    web = make_client(ref)
    page = web.get(f"/appointments/book/?center={center.pk}").content.decode()
    assert 'value="2026-01-06T08:00"' in page  # Tuesday's first slot (now is Mon 09:00)
    assert 'value="2026-01-05T08:00"' not in page  # already begun
    assert 'value="2026-01-10T08:00"' not in page  # Saturday: closed
    quote = _book(web, center, "removal", "2026-01-06T10:00")
    with books.engine() as e:
        expected = e.removal_quote(ref, T("2026-01-06T10:00"))["total"]
    from provider.billing.money import fmt
    assert f'id="fee">{fmt(expected)}<' in quote.content.decode()
    assert not Appointment.objects.exists()  # a quote books nothing
    done = _book(web, center, "removal", "2026-01-06T10:00", confirm="1")
    assert done.status_code == 302
    appt = Appointment.objects.get(client__ref=ref)
    assert (appt.center, appt.bay, appt.price_cents, appt.vin) == (center, 0, 4000, VIN)
    assert appt.serial == "LCI7-0001"


def test_bays_documents_slots_and_vehicle_refuse_with_a_form_error(books, make_client,
                                                                    make_center):
    from datetime import date
    center = make_center(bays=2)
    refs = [books.open(email=f"c{n}@example.com", serial=f"LCI7-000{n}") for n in range(3)]
    webs = [make_client(r) for r in refs]
    for web in webs[:2]:
        assert _book(web, center, "vehicle_switch", "2026-01-07T12:00", confirm="1").status_code == 302
    full = _book(webs[2], center, "vehicle_switch", "2026-01-07T12:00", confirm="1")
    assert full.status_code == 200 and "is full" in _errors(full)
    for slot, says in (("2026-01-07T13:00", "not one of"), ("2026-01-10T08:00", "not one of"),
                       ("2026-01-05T08:00", "in the future"), ("next tuesday", "Choose one of")):
        r = _book(webs[2], center, "vehicle_switch", slot, confirm="1")
        assert r.status_code == 200 and says in _errors(r), slot
    r = _book(webs[2], center, "vehicle_switch", "2026-01-08T08:00", confirm="1",
              vin="1HGCM82633A004353", vehicle_year="1890")
    assert "check digit" in _errors(r) and "model year" in _errors(r)
    lapsed = make_center(code="lapsed", insurance_until=date(2026, 1, 1))
    r = _book(webs[2], lapsed, "vehicle_switch", "2026-01-08T08:00", confirm="1")
    assert "insurance binder expired on Jan 01, 2026" in _errors(r)
    assert Appointment.objects.count() == 2


def test_booking_the_installation_at_a_center_moves_it_with_the_48h_fee(books, make_client,
                                                                        make_center):
    center = make_center()
    ref = books.open(appointment=T("2026-01-06T14:00"))  # 29 h away: under 48 h notice
    web = make_client(ref)
    with books.engine() as e:
        fee = e.reschedule_quote(ref, T("2026-01-07T08:00"))["total"]
    assert fee > 0
    before = books.charged(ref)
    r = _book(web, center, "installation", "2026-01-07T08:00", confirm="1")
    assert r.status_code == 302, _errors(r)
    assert books.charged(ref) - before == fee
    appt = Appointment.objects.get(client__ref=ref, kind="installation")
    assert appt.center == center and appt.charged == fee
    assert books.view(ref)["appointment_at"] == "2026-01-07T08:00:00Z"


def _center_booking(books, make_client, make_center, kind="installation", code="north",
                    serial="LCI7-0001", email="client@example.com"):
    center = make_center(code=code)
    if kind == "installation":
        ref = books.open(appointment=T("2026-01-08T10:00"), serial=serial, email=email)
    else:
        ref = books.open(serial=serial, email=email)
    web = make_client(ref)
    r = _book(web, center, kind, "2026-01-08T10:00", confirm="1")
    assert r.status_code == 302, _errors(r)
    return center, ref, Appointment.objects.get(client__ref=ref, kind=kind)


def test_staff_of_one_center_never_see_another_centers_appointment(books, make_client,
                                                                   make_center, compliance):
    mine, _, _ = _center_booking(books, make_client, make_center, code="north")
    _, _, theirs = _center_booking(books, make_client, make_center, code="south",
                                   serial="LCI7-0002", email="other@example.com")
    staff = mine.staff_client
    from provider.web.centers.urls import urlpatterns
    urls = ["/center/" + str(p.pattern).replace("<int:pk>", str(theirs.pk))
            for p in urlpatterns if "<int:pk>" in str(p.pattern)]
    assert len(urls) >= 6
    for url in urls:
        assert staff.get(url).status_code in (404, 405), url
        assert staff.post(url, {"confirm": "yes", "slot": "2026-01-09T10:00", "outcome": "ok",
                                "completed_serial": "LCI7-0002", "receipt": "x"}
                          ).status_code == 404, url
    day = staff.get("/center/?day=2026-01-08").content.decode()
    assert "A000001" in day and "A000002" not in day
    theirs.refresh_from_db()
    assert theirs.status == "booked" and theirs.work_order_file == ""
    # a client is not staff: the center's pages are not theirs
    from django.contrib.auth import get_user_model
    from django.test import Client
    client = Client()
    client.force_login(get_user_model().objects.get(username="a000001@example.com"))
    assert client.get("/center/").status_code == 404


def test_the_work_order_is_signed_for_the_handset_and_reprints_the_same(books, make_client,
                                                                       make_center, compliance):
    center, ref, appt = _center_booking(books, make_client, make_center, kind="removal")
    staff = center.staff_client
    detail = staff.get(f"/center/appointments/{appt.pk}/").content.decode()
    assert 'id="price">$40.00<' in detail and VIN in detail and ref in detail
    printed = staff.get(f"/center/appointments/{appt.pk}/work-order/").content.decode()
    assert "<svg" in printed and "@page" in printed
    token_hex = re.search(r'id="token"[^>]*>([0-9a-f]+)<', printed).group(1)
    described = tokens.describe(bytes.fromhex(token_hex))
    assert described["serial"] == "LCI7-0001" and described["action"] == "work_order"
    assert described["args"]["order"] == "removal" and described["args"]["vehicle"] == VIN
    again = staff.get(f"/center/appointments/{appt.pk}/work-order/").content.decode()
    assert token_hex in again
    file = staff.get(f"/center/appointments/{appt.pk}/work-order.toml")
    assert file["Content-Disposition"].startswith("attachment") and token_hex in file.content.decode()


def test_completing_an_installation_starts_billing_and_a_removal_returns_it(books, make_client,
                                                                           make_center,
                                                                           compliance):
    center, ref, appt = _center_booking(books, make_client, make_center)
    staff = center.staff_client
    books.to("2026-01-08T10:30")
    assert books.view(ref)["installed_at"] is None
    wrong = staff.post(f"/center/appointments/{appt.pk}/complete/",
                       {"completed_serial": "LCI7-9999", "outcome": "ok", "receipt": "applied"})
    assert "not LCI7-9999" in _errors(wrong)
    assert books.view(ref)["installed_at"] is None
    ok = staff.post(f"/center/appointments/{appt.pk}/complete/",
                    {"completed_serial": "LCI7-0001", "outcome": "ok", "receipt": "applied"})
    assert ok.status_code == 302
    assert books.view(ref)["installed_at"] == "2026-01-08T10:30:00Z"
    center.refresh_from_db()
    assert (center.rating, center.rated_appointments) == (100, 1)
    again = staff.post(f"/center/appointments/{appt.pk}/complete/",
                       {"completed_serial": "LCI7-0001", "outcome": "ok", "receipt": "applied"})
    assert "not open" in _errors(again)
    # the removal, booked by staff at their center
    r = staff.post("/center/book/", {"ref": ref, "kind": "removal", "slot": "2026-01-13T08:00",
                                     **VEHICLE, "confirm": "1"})
    assert r.status_code == 302, _errors(r)
    removal = Appointment.objects.get(client__ref=ref, kind="removal")
    books.to("2026-01-13T08:30")
    staff.post(f"/center/appointments/{removal.pk}/complete/",
               {"completed_serial": "LCI7-0001", "outcome": "not_done", "receipt": ""})
    center.refresh_from_db()
    assert (center.rating, center.rated_appointments) == (50, 2)
    assert books.view(ref)["status"] != "returned"


def test_staff_forms_take_bad_input_without_a_500(books, make_client, make_center):
    center, ref, appt = _center_booking(books, make_client, make_center, kind="removal")
    staff = center.staff_client
    for data in ({"ref": "nobody", "kind": "removal", "slot": "x"}, {"ref": "A999999",
                 "kind": "removal", "slot": "2026-01-09T08:00", **VEHICLE, "confirm": "1"},
                 {"kind": "teleport"}, {}):
        assert staff.post("/center/book/", data).status_code == 200
    for data in ({"outcome": "maybe"}, {}, {"outcome": "ok", "receipt": "x" * 30_000}):
        assert staff.post(f"/center/appointments/{appt.pk}/complete/", data).status_code == 200
    assert staff.get("/center/?day=2026-13-45").status_code == 200
    for data in ({"slot": "2026-01-09T09:00"}, {"slot": ""}, {"slot": "2026-01-09T08:00",
                                                              "confirm": "1"}):
        assert staff.post(f"/center/appointments/{appt.pk}/reschedule/", data).status_code in (200, 302)
    appt.refresh_from_db()
    assert appt.at.isoformat().startswith("2026-01-09T08:00")


def test_a_booked_appointment_moves_even_after_the_centers_insurance_lapsed(books, make_client,
                                                                           make_center):
    """A lapsed document stops new bookings, not moves of booked ones; the client's reschedule
    page lists the center's free slots and refuses a time that is not one."""
    from datetime import date
    center, ref, appt = _center_booking(books, make_client, make_center, kind="removal")
    center.documents.filter(kind="insurance").update(expires_on=date(2026, 1, 4))
    from django.test import Client
    web = Client()
    web.force_login(appt.client.user)
    page = web.get(f"/appointments/{appt.pk}/reschedule/").content.decode()
    assert 'id="free-slots"' in page and "Fri Jan 9 08:00" in page
    bad = web.post(f"/appointments/{appt.pk}/reschedule/", {"at": "2026-01-09T09:00",
                                                             "confirm": "yes"})
    assert "not one of" in _errors(bad)
    web.post(f"/appointments/{appt.pk}/reschedule/", {"at": "2026-01-09T08:00", "confirm": "yes"})
    appt.refresh_from_db()
    assert appt.at.isoformat().startswith("2026-01-09T08:00") and appt.center == center
    other = books.open(email="new@example.com", serial="LCI7-0005")
    r = _book(make_client(other), center, "removal", "2026-01-09T10:00", confirm="1")
    assert "insurance binder expired" in _errors(r)


def test_a_move_in_the_back_office_into_a_full_slot_frees_the_center_booking(books, make_client,
                                                                             make_center):
    center, ref, appt = _center_booking(books, make_client, make_center)  # 8 Jan 10:00
    other = books.open(email="o@example.com", serial="LCI7-0009")
    _book(make_client(other), center, "vehicle_switch", "2026-01-09T10:00", confirm="1")
    with books.engine() as e:
        e.reschedule(ref, T("2026-01-09T10:00"))  # the back office, not the portal
    from django.test import Client
    web = Client()
    web.force_login(appt.client.user)
    assert web.get("/appointments/").status_code == 200
    appt.refresh_from_db()
    assert appt.at.isoformat().startswith("2026-01-09T10:00") and appt.center is None
