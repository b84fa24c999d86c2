"""The service center's journey in a real browser (the system's Chromium, driven by Playwright)
against the live portal and the real billing engine: a client books a removal at the center in
the portal (a free slot, the vehicle, the engine's bill shown first); staff sign in, see the day's appointments,
open one, print its work order (the QR code and the token text), apply it to a simulated
handset with the real `lci-tool` against a real `lci-sim serve` process, complete the
appointment with the tool's receipt, and see the client's billing move (the device returned).

Screenshots go to $LCI_PORTAL_SCREENSHOTS when set (docs/portal/ is made so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provider.billing.money import fmt
from provider.web.portal.models import Appointment

from .conftest import VEHICLE, T
from .test_browser import page  # noqa: F401  (the Chromium page fixture)

REPO = Path(__file__).resolve().parents[3]
SERIAL = "LCI7-0001"
pytestmark = pytest.mark.django_db(transaction=True)


class Served:
    """`lci-sim serve` as a subprocess: the client's installed handset on a free TCP port,
    provisioned with the provider's keys."""

    def __init__(self, keys_dir: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", "serve", "--keys", str(keys_dir), "--serial", SERIAL,
             "--installed", "--tcp", "0", "--no-pty", "--quiet"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = None
        for line in self.proc.stdout:
            if line.startswith("tcp: "):
                self.url = line.split()[1]
                break
        assert self.url, self.proc.stderr.read()

    def tool(self, keys_dir: Path, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "host_tools.lci_tool", "--port", self.url,
                               "--keys", str(keys_dir), *argv], cwd=REPO, capture_output=True,
                              text=True, timeout=120)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()


def test_the_centers_journey(live_server, page, books, make_client, make_center,  # noqa: F811
                             compliance, settings, tmp_path):
    from django.contrib.auth import get_user_model

    from provider.web.centers import booking
    from provider.web.portal.models import ClientAccount

    shots = Path(os.environ.get("LCI_PORTAL_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    def shot(name):
        page.screenshot(path=str(shots / f"{name}.png"))

    url = live_server.url
    keys_dir = Path(settings.MASTER_SECRET_FILE).parent
    center = make_center(bays=2)
    staff_user = get_user_model().objects.get(username="tech@north.example")
    staff_user.set_password("north-center-2026")
    staff_user.save()
    # the client's device is installed; the client books a removal for today 10:00 in the portal
    ref = books.open(email="sam@example.com", serial=SERIAL)
    client_user = make_client(ref, email="sam@example.com").user
    client_user.set_password("sam-portal-2026")
    client_user.save()
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(url + "/login/")
    page.fill("#id_username", "sam@example.com")
    page.fill("#id_password", "sam-portal-2026")
    page.click("button[type=submit]")
    page.wait_for_url("**/account/")
    page.goto(url + "/appointments/")
    page.click("#book")
    page.wait_for_url("**/appointments/book/")
    page.select_option("#id_kind", "removal")
    page.select_option("#id_slot", "2026-01-05T10:00")
    page.fill("#id_vehicle_year", "2003")
    page.fill("#id_vehicle_make", "Honda")
    page.fill("#id_vehicle_model", "Accord")
    page.fill("#id_vin", "1HGCM82633A004353")  # one digit off: the check digit catches it
    page.click("text=Check the fee")
    assert "check digit" in page.inner_text("main")
    page.fill("#id_vin", VEHICLE["vin"])
    page.click("text=Check the fee")
    with books.engine() as e:
        bill = e.removal_quote(ref, T("2026-01-05T10:00"))["total"]
    assert page.inner_text("#fee") == fmt(bill)
    shot("book")
    page.click("text=Confirm booking")
    page.wait_for_url("**/appointments/")
    assert "North Interlock" in page.inner_text("main")
    removal = Appointment.objects.get(client__ref=ref, kind="removal")
    page.click("text=Sign out")
    page.wait_for_url("**/login/")
    # another client's installation, booked by staff
    vehicle = dict(VEHICLE, vehicle_year=2003)
    other = books.open(email="kim@example.com", serial="LCI7-0002",
                       appointment=T("2026-01-05T14:00"))
    make_client(other, email="kim@example.com")
    booking.book(ClientAccount.objects.get(ref=other), center, "installation",
                 booking.billing.moment(T("2026-01-05T14:00")), vehicle, staff_user)
    assert books.view(ref)["status"] == "active"

    # staff sign in and land on today's appointments
    page.goto(url + "/login/")
    page.fill("#id_username", "tech@north.example")
    page.fill("#id_password", "north-center-2026")
    page.click("button[type=submit]")
    page.wait_for_url("**/center/")
    rows = page.inner_text("#appointments")
    assert "10:00" in rows and "Removal" in rows and ref in rows and "Installation" in rows
    shot("center-day")

    # the appointment's details: client, vehicle, the agreed price, the work order
    page.click("#appointments a >> nth=0")
    page.wait_for_url(f"**/center/appointments/{removal.pk}/")
    assert page.inner_text("#price") == "$40.00"
    assert "2003 Honda Accord" in page.inner_text("#vehicle")
    assert ref in page.inner_text("#client")
    shot("center-appointment")

    # print it: the QR code and the file text for lci-tool
    page.click("#print")
    page.wait_for_url("**/work-order/")
    assert page.locator("#qr svg path").count() >= 1
    file_text = page.inner_text("#work-order-file")
    token_hex = page.inner_text("#token").strip()
    assert token_hex in file_text and f'serial = "{SERIAL}"' in file_text
    page.emulate_media(media="print")
    assert not page.locator(".bar").is_visible()  # the print has no buttons
    shot("work-order")
    page.emulate_media(media="screen")
    page.goto(url + f"/center/appointments/{removal.pk}/work-order/")
    assert page.inner_text("#token").strip() == token_hex  # re-printed: the same order

    # the technician applies it to the handset with the real lci-tool
    order = tmp_path / "order.toml"
    order.write_text(file_text)
    served = Served(keys_dir)
    try:
        applied = served.tool(keys_dir, "work-order", "apply", str(order), "--json")
    finally:
        served.stop()
    assert applied.returncode == 0, applied.stderr
    receipt = json.loads(applied.stdout.strip().splitlines()[-1])
    assert receipt["order"] == "removal" and receipt["compliance"] == "removed"

    # completes the appointment: billing returns the device
    page.goto(url + f"/center/appointments/{removal.pk}/")
    page.fill("#id_completed_serial", SERIAL)
    page.check("input[name=outcome][value=ok]")
    page.fill("#id_receipt", applied.stdout)
    page.click("#complete")
    page.wait_for_url(f"**/center/appointments/{removal.pk}/")
    assert "Done" in page.inner_text("#status")
    assert "returned" in page.inner_text("#billing")
    assert books.view(ref)["status"] == "returned"
    assert Appointment.objects.get(pk=removal.pk).receipt.strip() == applied.stdout.strip()
    shot("center-completed")
