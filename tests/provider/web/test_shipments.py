"""Shipments to a service center and visits recorded in the portal: the tracking number
e-mailed to the center through the outbox (a real SMTP server), a consolidated shipment listing
each client's unit, the center's staff marking it received, the handset-exchange work order
naming the unit that shipped; staff of one center see nothing of another's (404)."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from provider.web.centers.models import Center, CenterStaff
from provider.web.portal.models import OutboxMail
from provider.web.service import shipping
from provider.web.service.models import Shipment, Visit

pytestmark = pytest.mark.django_db


def make_center(code, email):
    return Center.objects.create(name=f"Center {code}", code=code, street="1 Main St",
                                 city="Minneapolis", state="MN", postal_code="55401",
                                 email=email)


def staff_of(center, name):
    user = get_user_model().objects.create_user(name, f"{name}@example.com", "pw-staff-1")
    CenterStaff.objects.create(user=user, center=center)
    web = Client()
    web.force_login(user)
    return web


@pytest.fixture
def two_centers(db):
    return make_center("mpls-1", "shop@mpls.example"), make_center("stp-2", "shop@stp.example")


def _consolidated(center):
    return shipping.ship(center, "1Z999AA10123456784", [
        {"kind": "handset", "serial": "LCI7-0101", "client_ref": "A-0001"},
        {"kind": "handset", "serial": "LCI7-0102", "client_ref": "A-0002"},
        {"kind": "part", "description": "mouthpieces (bag of 25)", "quantity": 2,
         "client_ref": "A-0002"},
    ], for_day=date(2026, 1, 12))


def test_the_tracking_number_is_mailed_and_each_clients_unit_listed(two_centers, smtp):
    mpls, _ = two_centers
    shipment = _consolidated(mpls)
    [mail] = smtp.messages
    assert mail["To"] == "shop@mpls.example" and "1Z999AA10123456784" in mail["Subject"]
    text = mail.get_content()
    assert "consolidated shipment for the appointments of 12 Jan 2026" in text
    assert "replacement handset LCI7-0101 (client A-0001)" in text
    assert "replacement handset LCI7-0102 (client A-0002)" in text
    assert "2 x mouthpieces (bag of 25) (client A-0002)" in text
    assert shipment.consolidated and shipment.mail.status == OutboxMail.SENT
    assert mail["Message-ID"] == shipment.mail.message_id


def test_the_mail_waits_for_a_server_that_is_down(two_centers, books, smtp, settings):
    from provider.web.portal import mailer
    smtp.stop()
    shipment = shipping.ship(two_centers[0], "9400111899223344556677",
                             [{"kind": "part", "description": "cord"}])
    assert shipment.mail.status == OutboxMail.FAILED
    smtp.start()
    settings.EMAIL_PORT = smtp.port
    mailer.retry_now(OutboxMail.objects.all())
    assert mailer.send_pending()["sent"] == 1
    assert "9400111899223344556677" in smtp.messages[0]["Subject"]


def test_staff_mark_it_received_and_another_centers_staff_get_404(two_centers, smtp):
    mpls, stp = two_centers
    shipment = _consolidated(mpls)
    ours, theirs = staff_of(mpls, "ann"), staff_of(stp, "bob")
    page = ours.get("/center/shipments/").content.decode()
    assert "1Z999AA10123456784" in page
    assert "1Z999AA10123456784" not in theirs.get("/center/shipments/").content.decode()
    for path in (f"/center/shipments/{shipment.pk}/",):
        assert theirs.get(path).status_code == 404
    assert theirs.post(f"/center/shipments/{shipment.pk}/received/").status_code == 404
    shipment.refresh_from_db()
    assert shipment.received_at is None
    detail = ours.get(f"/center/shipments/{shipment.pk}/").content.decode()
    assert "LCI7-0101" in detail and "A-0002" in detail and "consolidated" in detail
    ours.post(f"/center/shipments/{shipment.pk}/received/")
    shipment.refresh_from_db()
    assert shipment.received_at is not None and shipment.received_by.username == "ann"
    first = shipment.received_at
    ours.post(f"/center/shipments/{shipment.pk}/received/")  # twice: still the first time
    shipment.refresh_from_db()
    assert shipment.received_at == first
    client_user = Client()
    client_user.force_login(get_user_model().objects.create_user("c", "c@example.com", "pw"))
    assert client_user.get(f"/center/shipments/{shipment.pk}/").status_code == 404
    assert Client().get("/center/shipments/").status_code == 302  # sign in first


def test_a_handset_exchange_work_order_names_the_unit_that_shipped(two_centers, smtp, keys):
    from protocol.tokens import decode_token, parse_token
    mpls, _ = two_centers
    shipment = _consolidated(mpls)
    unit = shipment.items.get(serial="LCI7-0102")
    order = shipping.exchange_order(unit, "LCI7-0002", signer=keys.root)
    assert order.unit.serial == "LCI7-0102" and order.serial == "LCI7-0002"
    assert order.order_id == f"HX-{unit.pk}-LCI7-0102"
    signed = decode_token(parse_token(bytes.fromhex(order.token)))
    assert signed.serial == "LCI7-0002" and signed.action == "work_order"
    assert dict(signed.args) == {"order": "handset_exchange", "id": order.order_id,
                                 "vehicle": ""}
    assert f'id = "{order.order_id}"' in order.file and order.token in order.file
    assert shipping.exchange_order(unit, "LCI7-0002") == order  # one order per unit
    ann = staff_of(mpls, "ann")
    page = ann.get(f"/center/shipments/{shipment.pk}/").content.decode()
    assert f"{order.order_id} (exchanges LCI7-0002)" in page
    assert ann.get(f"/center/exchange-orders/{order.pk}.toml").content.decode() == order.file
    bob = staff_of(two_centers[1], "bob")
    assert bob.get(f"/center/exchange-orders/{order.pk}.toml").status_code == 404
    with pytest.raises(ValueError, match="replacement handset"):
        shipping.exchange_order(shipment.items.get(kind="part"), "LCI7-0002")


def test_bad_shipments_are_refused_whole(two_centers):
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError):
        shipping.ship(two_centers[0], "not a number!", [{"kind": "part", "description": "x"}])
    with pytest.raises(ValidationError):
        shipping.ship(two_centers[0], "1Z999AA10123456785", [{"kind": "gadget"}])
    assert not Shipment.objects.exists() and not OutboxMail.objects.exists()


def test_a_visit_recorded_in_the_portal_is_filed_with_the_client(two_centers, books, smtp):
    mpls, stp = two_centers
    ref = books.open(serial="LCI7-0002", email="driver@example.com")
    web = staff_of(mpls, "ann")
    page = web.post("/center/visits/new/", {"kind": "calibration", "serial": "LCI7-0002",
                                            "notes": "as found 0.041"})
    visit = Visit.objects.get()
    assert page.url == f"/center/visits/{visit.pk}/"
    assert (visit.center, visit.client_ref, visit.source, visit.recorded_by.username) == (
        mpls, ref, "portal", "ann")
    assert staff_of(stp, "bob").get(page.url).status_code == 404
    # bad input: a form error, nothing stored
    for data, words in (
            ({"kind": "calibration", "serial": "LCI7-9999"}, "no client has handset LCI7-9999"),
            ({"kind": "calibration", "serial": "no spaces"}, "a serial number is 1 to 32"),
            ({"kind": "handset_exchange", "serial": "LCI7-0002"}, "only with the provider"),
            ({"kind": "teleport", "serial": "LCI7-0002"}, "Select a valid choice")):
        answer = web.post("/center/visits/new/", data)
        assert answer.status_code == 200 and words in answer.content.decode()
    assert Visit.objects.count() == 1
    # an exchange with the work order for this handset and the unit that shipped
    unit = _consolidated(mpls).items.get(serial="LCI7-0101")
    order = shipping.exchange_order(unit, "LCI7-0002")
    web.post("/center/visits/new/", {"kind": "handset_exchange", "serial": "LCI7-0002",
                                     "exchange": order.pk})
    exchange = Visit.objects.get(kind="handset_exchange")
    assert exchange.exchange == order
    assert "unit LCI7-0101 in" in web.get(f"/center/visits/{exchange.pk}/").content.decode()


def test_provider_staff_ship_from_the_admin_and_the_center_is_mailed(two_centers, smtp):
    mpls, _ = two_centers
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    admin = Client()
    admin.force_login(staff)
    form = {"center": mpls.pk, "carrier": "FedEx", "tracking_number": "794612345678",
            "shipped_on": "2026-01-09", "for_day": "",
            "items-TOTAL_FORMS": "2", "items-INITIAL_FORMS": "0",
            "items-MIN_NUM_FORMS": "0", "items-MAX_NUM_FORMS": "1000",
            "items-0-kind": "handset", "items-0-serial": "LCI7-0301", "items-0-description": "",
            "items-0-quantity": "1", "items-0-client_ref": "A-0009",
            "items-1-kind": "part", "items-1-serial": "", "items-1-description": "cord",
            "items-1-quantity": "3", "items-1-client_ref": ""}
    answer = admin.post("/admin/service/shipment/add/", form)
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    shipment = Shipment.objects.get()
    assert shipment.items.count() == 2 and shipment.mail.status == OutboxMail.SENT
    [mail] = smtp.messages
    assert "794612345678" in mail["Subject"] and "3 x cord" in mail.get_content()
    assert "replacement handset LCI7-0301 (client A-0009)" in mail.get_content()
    # a bad tracking number is a form error, nothing shipped, nothing mailed
    form["tracking_number"] = "12 34"
    assert admin.post("/admin/service/shipment/add/", form).status_code == 200
    assert Shipment.objects.count() == 1 and len(smtp.messages) == 1
