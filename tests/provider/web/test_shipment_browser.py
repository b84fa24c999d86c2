"""A shipment in a real browser (the system's Chromium, driven by Playwright) against the live
portal and a real SMTP server: the provider ships a consolidated shipment, the center receives
the tracking-number e-mail, its staff signs in, opens the shipment (each client's unit on its
own line, the e-mail shown as sent) and marks it received."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from provider.web.centers.models import Center, CenterStaff
from provider.web.service import shipping
from provider.web.service.models import Shipment

from .test_browser import page  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_shipment_with_its_email_marked_received(live_server, page, smtp, tmp_path):  # noqa: F811
    shots = Path(os.environ.get("LCI_PORTAL_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    center = Center.objects.create(name="Lake Street Interlock", code="mpls-1",
                                   street="1 Lake St", city="Minneapolis", state="MN",
                                   postal_code="55408", email="shop@lakestreet.example")
    user = get_user_model().objects.create_user("ann@lakestreet.example",
                                                "ann@lakestreet.example", "center-pass-2026")
    CenterStaff.objects.create(user=user, center=center)
    shipment = shipping.ship(center, "1Z999AA10123456784", [
        {"kind": "handset", "serial": "LCI7-0101", "client_ref": "A-0001"},
        {"kind": "handset", "serial": "LCI7-0102", "client_ref": "A-0002"},
    ], for_day=date(2026, 1, 12))
    [mail] = smtp.messages
    assert mail["To"] == "shop@lakestreet.example"
    assert "1Z999AA10123456784" in mail["Subject"] and "LCI7-0102" in mail.get_content()

    page.goto(live_server.url + "/login/?next=/center/shipments/")
    page.fill("#id_username", "ann@lakestreet.example")
    page.fill("#id_password", "center-pass-2026")
    page.click("button[type=submit]")
    page.wait_for_url("**/center/shipments/")
    assert "on its way" in page.inner_text("main")
    page.click("text=UPS 1Z999AA10123456784")
    page.wait_for_url(f"**/center/shipments/{shipment.pk}/")
    body = page.inner_text("main")
    assert "consolidated shipment" in body
    rows = page.locator("table tr").all_inner_texts()
    assert any("A-0001" in r and "LCI7-0101" in r for r in rows)
    assert any("A-0002" in r and "LCI7-0102" in r for r in rows)
    assert page.inner_text("#mail-status") == "Sent"
    page.screenshot(path=str(shots / "center-shipment.png"))
    page.click("text=Mark received")
    page.wait_for_url(f"**/center/shipments/{shipment.pk}/")
    assert "marked received" in page.inner_text("main")
    assert page.inner_text("#received").startswith("Received")
    assert page.locator("text=Mark received").count() == 0
    shipment = Shipment.objects.get()
    assert shipment.received_by == user and shipment.received_at is not None
