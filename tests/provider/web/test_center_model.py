"""The service center's records: documents that block bookings, scopes of its delegated key."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from provider.web.centers.models import Center, CenterDocument, CenterStaff, OpeningHours


def _center(**kw):
    fields = dict(name="North Shop", code="north", street="1 Main St", city="Duluth", state="MN",
                  postal_code="55802", email="shop@example.com", bays=2)
    fields.update(kw)
    return Center.objects.create(**fields)


@pytest.mark.django_db
def test_a_center_books_only_with_an_unexpired_agreement_and_insurance():
    c = _center()
    today = date(2026, 3, 1)
    assert c.blocking_documents(today) == ["no service center agreement on file",
                                           "no insurance binder on file"]
    CenterDocument.objects.create(center=c, kind="agreement", received_on=date(2025, 1, 1),
                                  expires_on=date(2027, 1, 1))
    ins = CenterDocument.objects.create(center=c, kind="insurance", received_on=date(2025, 1, 1),
                                        expires_on=date(2026, 2, 28))
    CenterDocument.objects.create(center=c, kind="w9", received_on=date(2025, 1, 1))
    assert c.blocking_documents(today) == ["the insurance binder expired on Feb 28, 2026"]
    assert [d.kind for d in c.expired_documents(today)] == ["insurance"]
    ins.expires_on = date(2026, 3, 1)  # valid through its expiry day
    ins.save()
    assert c.blocking_documents(today) == []


@pytest.mark.django_db
def test_key_scopes_and_public_key_are_validated():
    c = _center(key_id="north", key_public="ab" * 32, key_scopes="work_order,calibrate")
    c.full_clean()
    assert c.scopes == ["work_order", "calibrate"]
    for field, bad in (("key_scopes", "work_order,root"), ("key_public", "XY" * 32)):
        setattr(c, field, bad)
        with pytest.raises(ValidationError) as err:
            c.full_clean()
        assert field in err.value.message_dict
        c.refresh_from_db()


@pytest.mark.django_db
def test_one_staff_login_belongs_to_one_center_and_hours_close_after_opening():
    from django.contrib.auth import get_user_model
    a, b = _center(), _center(code="south")
    user = get_user_model().objects.create_user("tech", password="x")
    CenterStaff.objects.create(user=user, center=a)
    with pytest.raises(IntegrityError), transaction.atomic():
        CenterStaff.objects.create(user=user, center=b)
    with pytest.raises(IntegrityError), transaction.atomic():
        OpeningHours.objects.create(center=a, weekday=0, opens=time(17), closes=time(8))


@pytest.mark.django_db
def test_provider_staff_see_expired_documents_in_the_admin():
    from django.contrib.auth import get_user_model
    from django.test import Client
    c = _center(name="Lapsed Shop", code="lapsed")
    CenterDocument.objects.create(center=c, kind="agreement", received_on=date(2020, 1, 1),
                                  expires_on=date(2021, 1, 1))
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    web = Client()
    web.force_login(admin)
    page = web.get("/admin/centers/center/").content.decode()
    assert "Lapsed Shop" in page and "service center agreement" in page
    docs = web.get("/admin/centers/centerdocument/").content.decode()
    assert "icon-yes.svg" in docs  # the expired flag
    staffer = get_user_model().objects.create_user("tech", password="x")
    CenterStaff.objects.create(user=staffer, center=c)
    web.force_login(staffer)
    assert web.get("/admin/centers/center/").status_code == 302  # center staff are not admins


@pytest.mark.django_db
def test_a_centers_key_is_recorded_from_the_file_lci_tool_delegate_wrote(tmp_path):
    import io
    import subprocess
    import sys

    from django.core.management import CommandError, call_command

    from host_tools import keys

    made = keys.keygen(tmp_path / "keys")
    other = keys.keygen(tmp_path / "other")
    done = subprocess.run([sys.executable, "-m", "host_tools.lci_tool", "delegate", "--keys",
                           str(tmp_path / "keys"), "--id", "north-shop", "--scopes",
                           "calibrate,unlock", "--days", "365", "--out",
                           str(tmp_path / "north.key")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    c = _center()
    out = io.StringIO()
    call_command("center_key", "north", str(tmp_path / "north.key"), "--root",
                 str(made["root_public"]), stdout=out)
    c.refresh_from_db()
    key = keys.load_delegated_key(tmp_path / "north.key")
    assert (c.key_id, c.key_public) == ("north-shop", key.public_key.hex())
    assert sorted(c.scopes) == ["calibrate", "unlock"]
    assert "north-shop (" in out.getvalue()
    with pytest.raises(CommandError, match="another root"):
        call_command("center_key", "north", str(tmp_path / "north.key"), "--root",
                     str(other["root_public"]))
    with pytest.raises(CommandError, match="not a delegated key file"):
        call_command("center_key", "north", str(made["root_public"]))
    with pytest.raises(CommandError, match="no service center"):
        call_command("center_key", "south", str(tmp_path / "north.key"))
