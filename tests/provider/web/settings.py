"""Test settings: production settings (DEBUG off, secure cookies), a test key, fast hashing is
NOT used (the real PBKDF2 hasher is what the tests check), local memory mail unless a test
points it at its SMTP server."""

import os

os.environ.setdefault("LCI_SECRET_KEY", "tests-only-secret-key-0123456789abcdefghijklmnop")
os.environ.pop("LCI_DEBUG", None)
os.environ.pop("LCI_SMTP_URL", None)

from provider.web.settings import *  # noqa: E402,F401,F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:",
                         "TEST": {"NAME": ":memory:"}}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
# the test servers speak plain HTTP (test_security checks the production values)
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
# a fast hasher for the many sign-ins of the tests; test_security checks that the production
# settings keep Django's PBKDF2 default
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
