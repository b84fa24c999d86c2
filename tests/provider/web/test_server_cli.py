"""lci-server web as an operator runs it: one database file shared by billing and the portal
(LCI_DATABASE_URL), migrations, and the e-mail worker sending through LCI_SMTP_URL to a real
SMTP server; an invitation from the command line."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from provider.billing import schema
from provider.billing.engine import Engine
from provider.billing.policy import load_policy

from .conftest import START, SmtpServer, T


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", "provider.cli", "web", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_worker_mails_notices_through_lci_smtp_url_from_the_shared_database(tmp_path):
    db = tmp_path / "provider.db"
    conn = schema.connect(db)
    schema.create(conn)
    Engine.initialize(conn, load_policy(), T(START), 5)
    conn.close()
    from provider.billing import opening
    engine = opening.open_engine(str(db))
    ref = engine.open_account(serial="LCI7-0009", email="cli@example.com", state="MN",
                              county="Hennepin", token="tok_cli", pay_initial=True)
    engine.processor.set_card("tok_cli", T("2026-01-18"), "expired_card")
    engine.advance(T("2026-01-19T10:00"))
    engine.disconnect()
    smtp = SmtpServer()
    smtp.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LCI_", "DJANGO_"))}
        env.update(LCI_DATABASE_URL=f"sqlite:///{db}", LCI_SECRET_KEY=secrets.token_urlsafe(50),
                   LCI_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}")
        assert _run(env, "manage", "migrate", "--verbosity", "0").returncode == 0
        sent = _run(env, "send-notices")
        assert sent.returncode == 0 and "1 sent, 0 failed" in sent.stdout, sent.stderr
        assert [m["Subject"] for m in smtp.messages] == ["Your payment failed"]
        assert "expired_card" in smtp.messages[0].get_content()
        again = _run(env, "send-notices")
        assert "0 sent" in again.stdout and len(smtp.messages) == 1
        invited = _run(env, "invite", ref, "--base-url", "https://portal.example/")
        assert invited.returncode == 0 and invited.stdout.startswith("https://portal.example/invite/")
        assert smtp.messages[-1]["To"] == "cli@example.com"
        missing = _run(env, "invite", "A999999")
        assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    finally:
        smtp.stop()
