"""Demo data for `make serve`: a fresh provider database in var/demo with one client in each
state — current, past due, early service recall, lockout, returned — plus one invitation not yet
used, and a service center (staff login, appointments with one today, a printable work order)
beside a second center whose insurance binder expired. Billing runs on its virtual clock from
5 Jan 2026; the portal and billing share the one
database file (LCI_DATABASE_URL), the simulated processor keeps its records beside it, and the
provider's keys (sim.provider, seeded: demo only) answer lockout codes."""

from __future__ import annotations

import io
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from protocol.coretime import DAY

ROOT = Path("var/demo")
START = int(datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp())
PASSWORD = "interlock-demo"

# (login, state wanted, opened on day, card fails from day, removed on day)
CLIENTS = [
    ("lockout@demo.lci777.example", "lockout", 0, 13, None),
    ("recall@demo.lci777.example", "recall", 7, 20, None),
    ("pastdue@demo.lci777.example", "past_due", 14, 27, None),
    ("current@demo.lci777.example", "active", 20, None, None),
    ("returned@demo.lci777.example", "returned", 0, None, 20),
]
INVITED = "new@demo.lci777.example"
CENTER_LOGIN = "center@demo.lci777.example"
DEMO_VIN = "1HGCM82633A004352"
CLOCK_DAY = 29.125  # 3 Feb 2026, 12:00


def configure_environment(root: Path = ROOT) -> None:
    root = root.resolve()
    os.environ["LCI_DEBUG"] = "1"
    os.environ["LCI_DATABASE_URL"] = f"sqlite:///{root / 'provider.db'}"
    os.environ.pop("LCI_BILLING_URL", None)
    os.environ["LCI_MASTER_SECRET_FILE"] = str(root / "keys" / "master.secret")
    os.environ["LCI_BILLING_SIGNING_KEY"] = str(root / "keys" / "billing.key")
    os.environ["LCI_COMPLIANCE_KEY"] = str(root / "keys" / "technician.key")


def build(root: Path = ROOT) -> dict:
    """Make the demo (Django must be set up with configure_environment's settings)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from provider.billing import schema
    from provider.billing.engine import Engine
    from provider.billing.policy import load_policy
    from sim.provider import Provider

    from .portal import billing, handsets, invitations
    from .portal.billing import moment
    from .portal.models import ClientAccount, TermsAcceptance

    if root.exists():
        shutil.rmtree(root)
    (root / "keys").mkdir(parents=True)
    Provider(seed=7).save(root / "keys")
    conn = schema.connect(settings.BILLING_URL)
    schema.create(conn)
    Engine.initialize(conn, load_policy(), START, seed=7)
    conn.close()
    call_command("migrate", interactive=False, verbosity=0)

    refs = {}
    with billing.engine() as e:
        plan = sorted(
            [(opened, "open", login) for login, _, opened, _, _ in CLIENTS]
            + [(removed, "remove", login) for login, _, _, _, removed in CLIENTS if removed]
        )
        for n, (day, what, login) in enumerate(plan):
            e.advance(max(e.now, START + day * DAY))
            if what == "open":
                spec = next(c for c in CLIENTS if c[0] == login)
                token = f"tok_demo_{n}"
                if spec[3] is not None:
                    e.processor.set_card(token, START + spec[3] * DAY, "insufficient_funds")
                refs[login] = e.open_account(
                    serial=f"LCI7-DEMO{n:02d}", email=login, state="MN", county="Hennepin",
                    token=token, theft_protection=(n % 2 == 0), pay_initial=True)
            else:
                e.remove_device(refs[login])
        e.advance(START + int(CLOCK_DAY * DAY))
        invited = e.open_account(serial="LCI7-DEMO99", email=INVITED, state="MN",
                                 county="Hennepin", token="tok_visa", pay_initial=True,
                                 appointment=e.now + 5 * DAY)
        now = moment(e.now)
    User = get_user_model()
    logins = []
    for login, wanted, *_ in CLIENTS:
        user = User.objects.create_user(username=login, email=login, password=PASSWORD)
        client = ClientAccount.objects.create(user=user, ref=refs[login])
        for document in (TermsAcceptance.TERMS, TermsAcceptance.SERVICE_AGREEMENT):
            TermsAcceptance.objects.create(client=client, document=document,
                                           version=settings.TERMS_VERSION, ip="127.0.0.1")
        view = billing.account(refs[login])
        if view["status"] != wanted:
            raise RuntimeError(f"demo: {login} is {view['status']}, expected {wanted}")
        compliance = {"lockout": "lockout", "recall": "early_service_recall",
                      "returned": "removed"}.get(view["status"], "normal")
        handsets.record(view["serial"], {"compliance": compliance}, reported_at=now,
                        source="demo")
        logins.append((login, view["status"], refs[login]))
    User.objects.create_superuser("staff", "staff@demo.lci777.example", PASSWORD)
    invitation = invitations.invite(invited, "http://127.0.0.1:8000/", send_mail=False)
    locked = billing.account(refs[CLIENTS[0][0]])
    center = build_centers(refs, root / "keys" / "technician.key")
    from .service.demo import add_shipment
    return {"clients": logins, "invitation": invitation,
            "request": handset_request(locked["serial"]), "center": center,
            "shipment": add_shipment(logins, now.date())}


def build_centers(refs: dict, center_key: Path | None = None) -> dict:
    """Northside Interlock (2 bays, documents valid, a staff login) with a vehicle switch today,
    a removal next week and one completed removal; Lakeside Auto, whose insurance binder
    expired (provider staff see it in the admin; it takes no new bookings). Northside signs its
    uploads with `center_key` (the demo's technician key), so `lci-tool service --upload` works
    against `make serve`."""
    from datetime import date, time, timedelta

    from django.contrib.auth import get_user_model

    from .centers import booking, completion
    from .centers.models import Center, CenterDocument, CenterPrice, CenterStaff, OpeningHours
    from .portal import billing
    from .portal.models import Appointment, ClientAccount

    today = billing.now()
    made = {}
    for code, name, city, insurance_until in (
            ("northside", "Northside Interlock", "Minneapolis", date(2027, 3, 31)),
            ("lakeside", "Lakeside Auto", "Duluth", date(2026, 1, 31))):
        center = Center.objects.create(
            name=name, code=code, street="100 Main St", city=city, state="MN",
            postal_code="55401", email=f"{code}@centers.demo.lci777.example", phone="612-555-0100",
            bays=2, key_id=f"center-{code}", key_public="00" * 32, key_scopes="calibrate,unlock")
        for weekday in range(6):
            OpeningHours.objects.create(center=center, weekday=weekday, opens=time(8),
                                        closes=time(18))
        for kind, until in (("agreement", date(2027, 12, 31)), ("insurance", insurance_until),
                            ("w9", None)):
            CenterDocument.objects.create(center=center, kind=kind, reference=f"{code}-{kind}",
                                          received_on=date(2025, 11, 1), expires_on=until)
        for kind, cents in (("installation", 7500), ("removal", 4000), ("vehicle_switch", 6000)):
            CenterPrice.objects.create(center=center, kind=kind, cents=cents)
        made[code] = center
    center = made["northside"]
    if center_key is not None:
        from django.core.management import call_command
        call_command("center_key", "northside", str(center_key), verbosity=0,
                     stdout=io.StringIO())
    staff = get_user_model().objects.create_user(CENTER_LOGIN, CENTER_LOGIN, PASSWORD)
    CenterStaff.objects.create(user=staff, center=center)
    vehicle = {"vehicle_year": 2019, "vehicle_make": "Ford", "vehicle_model": "F-150",
               "vin": DEMO_VIN}
    current = ClientAccount.objects.get(ref=refs["current@demo.lci777.example"])
    slot = today.replace(hour=14, minute=0, second=0, microsecond=0)
    switch = booking.book(current, center, "vehicle_switch", slot, vehicle, staff)
    past_due = ClientAccount.objects.get(ref=refs["pastdue@demo.lci777.example"])
    booking.book(past_due, center, "removal", slot + timedelta(days=7), vehicle, staff)
    returned = ClientAccount.objects.get(ref=refs["returned@demo.lci777.example"])
    removed = billing.account(returned.ref)["removed_at"]
    Appointment.objects.create(
        client=returned, kind="removal", center=center, bay=0, price_cents=4000,
        at=removed.replace(hour=10, minute=0, second=0), status=Appointment.DONE,
        outcome=Appointment.OK, serial=billing.account(returned.ref)["serial"],
        completed_serial=billing.account(returned.ref)["serial"], completed_at=removed,
        receipt="removal applied (demo)", vehicle_year=2019, vehicle_make="Ford",
        vehicle_model="F-150", vin=DEMO_VIN)
    completion.refresh_rating(center)
    return {"login": CENTER_LOGIN, "today": switch.pk}


def handset_request(serial: str) -> str:
    """The request code the locked-out demo client's handset shows after B is pressed (its
    first clear request, protocol/keycodes.py): what the client types in the portal."""
    from protocol.keycodes import request_code

    return request_code(serial, "clear", 1, b"\x07" * 8)


def print_welcome(made: dict, url: str) -> None:
    from .portal import invitations
    print(f"\nLCI-777 client portal (demo data in {ROOT}/): {url}")
    print(f"  every demo password: {PASSWORD}")
    for login, status, ref in made["clients"]:
        print(f"  {status:<10} {ref}  {login}")
    print(f"  staff admin: {url}admin/  user staff")
    if made.get("center"):
        print(f"  service center: {url}center/  user {made['center']['login']}"
              f" (today's appointment: {url}center/appointments/{made['center']['today']}/)")
    print(f"  a new client's invitation: {invitations.link(made['invitation'], url)}")
    print(f"  the lockout client's handset shows the request code {made['request']} (after B);")
    print("    replace the card (it is failing) to pay the balance, then ask for the code")
    from .service.demo import welcome_lines
    for line in welcome_lines(made.get("shipment"), url):
        print(line)
    print("  mail is printed here (set LCI_SMTP_URL to send it)\n", flush=True)
