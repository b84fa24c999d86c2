"""The portal and billing on one real PostgreSQL database (pgserver, started by the tests):
billing's tables and the portal's migrations side by side at one LCI_DATABASE_URL; a client signs
in and sees the engine's balance; the worker mails the engine's notice."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from provider.billing import opening, schema
from provider.billing.engine import Engine
from provider.billing.money import fmt
from provider.billing.policy import load_policy
from tests.provider.conftest import fresh_postgres_url

from .conftest import START, SmtpServer, T

PAGE = """
from django.contrib.auth import get_user_model
from django.test import Client
from provider.web.portal.models import ClientAccount, TermsAcceptance
from django.conf import settings
user = get_user_model().objects.create_user("pg@example.com", "pg@example.com", "pw-pg-1234")
client = ClientAccount.objects.create(user=user, ref="{ref}")
for doc in ("terms", "service_agreement"):
    TermsAcceptance.objects.create(client=client, document=doc, version=settings.TERMS_VERSION)
web = Client()
assert web.login(username="pg@example.com", password="pw-pg-1234")
page = web.get("/account/").content.decode()
print(page[page.index('id="balance">'):][:40])
print(settings.DATABASES["default"]["ENGINE"])
"""


def _web(env, *args):
    return subprocess.run([sys.executable, "-m", "provider.cli", "web", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_portal_and_billing_share_one_postgresql_database(postgres_server):
    url = fresh_postgres_url(postgres_server)
    conn = schema.connect(url)
    schema.create(conn)
    Engine.initialize(conn, load_policy(), T(START), 3)
    conn.close()
    engine = opening.open_engine(url)
    ref = engine.open_account(serial="LCI7-0077", email="pg@example.com", state="MN",
                              county="Hennepin", token="tok_pg", pay_initial=True)
    engine.processor.set_card("tok_pg", T("2026-01-18"), "declined")
    engine.advance(T("2026-01-19T10:00"))
    balance = engine.store.balance(engine.store.account_by_ref(ref).id)
    engine.disconnect()
    assert balance > 0
    smtp = SmtpServer()
    smtp.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LCI_", "DJANGO_"))}
        env.update(LCI_DATABASE_URL=url, LCI_SECRET_KEY=secrets.token_urlsafe(50),
                   LCI_ALLOWED_HOSTS="testserver", LCI_SSL_REDIRECT="0",
                   LCI_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}")
        migrated = _web(env, "manage", "migrate", "--verbosity", "0")
        assert migrated.returncode == 0, migrated.stderr
        shown = _web(env, "manage", "shell", "-c", PAGE.format(ref=ref))
        assert shown.returncode == 0, shown.stderr
        assert f'id="balance">{fmt(balance)}<' in shown.stdout
        assert "django.db.backends.postgresql" in shown.stdout
        sent = _web(env, "send-notices")
        assert sent.returncode == 0 and "1 sent" in sent.stdout, sent.stderr
        assert [m["To"] for m in smtp.messages] == ["pg@example.com"]
    finally:
        smtp.stop()
