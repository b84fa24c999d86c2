"""`make serve`'s demo data: one client in each state, each able to sign in; and lci-server's
command line."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test import Client

from provider import cli
from provider.web import demo

pytestmark = pytest.mark.django_db


def test_the_demo_has_one_client_in_each_state_and_they_can_sign_in(tmp_path, settings):
    root = tmp_path / "demo"
    settings.BILLING_URL = f"sqlite:///{tmp_path / 'billing.db'}"
    settings.MASTER_SECRET_FILE = str(root / "keys" / "master.secret")
    made = demo.build(root)
    assert sorted(status for _, status, _ in made["clients"]) == [
        "active", "lockout", "past_due", "recall", "returned"]
    for login, status, ref in made["clients"]:
        web = Client()
        assert web.login(username=login, password=demo.PASSWORD)
        page = web.get("/account/").content.decode()
        assert ref in page and f'id="status">{status.replace("_", " ")}<' in page
    assert Client().get(f"/invite/{made['invitation'].token}/").status_code == 200
    # what a person does with `make serve`: the locked-out client replaces the failing card (the
    # balance is charged to it at once) and gets the code for the request the handset shows
    locked = next(login for login, status, _ in made["clients"] if status == "lockout")
    web = Client()
    web.login(username=locked, password=demo.PASSWORD)
    web.post("/card/", {"token": "tok_visa"})
    assert b'id="balance">$0.00<' in web.get("/account/").content
    page = web.post("/lockout-code/", {"request": made["request"]}).content.decode()
    assert re.search(r'id="code">\d{8,9}<', page)


def test_the_demo_has_a_service_center_with_an_appointment_today_and_a_work_order(tmp_path,
                                                                                  settings):
    root = tmp_path / "demo"
    settings.BILLING_URL = f"sqlite:///{tmp_path / 'billing.db'}"
    settings.MASTER_SECRET_FILE = str(root / "keys" / "master.secret")
    settings.COMPLIANCE_SIGNING_KEY = str(root / "keys" / "technician.key")
    made = demo.build(root)
    web = Client()
    assert web.login(username=made["center"]["login"], password=demo.PASSWORD)
    day = web.get("/center/").content.decode()
    assert "Vehicle switch" in day and "14:00" in day
    printed = web.get(f"/center/appointments/{made['center']['today']}/work-order/")
    assert printed.status_code == 200 and b"<svg" in printed.content and b'id="token"' in printed.content
    profile = web.get("/center/profile/").content.decode()
    assert 'id="rating">100%<' in profile
    from provider.web.centers.models import Center
    lakeside = Center.objects.get(code="lakeside")
    assert lakeside.blocking_documents(date(2026, 2, 3)) == [
        "the insurance binder expired on Jan 31, 2026"]
    # Northside's uploads verify against the demo's technician key, so the upload can be tried
    from host_tools import keys
    technician = keys.load_delegated_key(root / "keys" / "technician.key")
    northside = Center.objects.get(code="northside")
    assert (northside.key_id, northside.key_public) == (technician.key_id,
                                                        technician.public_key.hex())


def test_lci_server_has_a_web_service_beside_the_link(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "web" in out and "link" in out
    with pytest.raises(SystemExit) as done:
        cli.main(["web", "serve", "--port", "0"])
    assert done.value.code == 2 and "--port 0" in capsys.readouterr().err


def test_the_demo_center_gets_a_shipment_with_its_mail_and_an_exchange_order(tmp_path, settings):
    from provider.web.centers.models import Center
    from provider.web.service.demo import TRACKING, welcome_lines

    root = tmp_path / "demo"
    settings.BILLING_URL = f"sqlite:///{tmp_path / 'billing.db'}"
    settings.MASTER_SECRET_FILE = str(root / "keys" / "master.secret")
    settings.COMPLIANCE_SIGNING_KEY = str(root / "keys" / "root.key")
    built = demo.build(root)
    made = built["shipment"]
    shipment = made["shipment"]
    assert made["center"] == Center.objects.get(code="northside")
    assert shipment.tracking_number == TRACKING and shipment.consolidated
    assert shipment.mail.status == "sent"  # the console backend of the demo
    assert {i.client_ref for i in shipment.items.all()} >= {made["exchange_order"].client_ref}
    assert made["exchange_order"].unit.serial == "LCI7-DEMO51" and made["exchange_order"].file
    assert any(TRACKING in line for line in welcome_lines(made, "http://127.0.0.1:8000/"))
    # the demo center's staff see it on their shipments page
    web = Client()
    assert web.login(username=built["center"]["login"], password=demo.PASSWORD)
    assert TRACKING in web.get(f"/center/shipments/{shipment.pk}/").content.decode()
