"""Django settings for the provider's web application, all from the environment.

  LCI_DATABASE_URL         the database (SQLite by default; PostgreSQL by URL) — shared with billing
  LCI_BILLING_URL          the billing store, when it is not the same database (tests)
  LCI_DEBUG=1              development: plain-HTTP cookies, the development key, console mail
  LCI_SECRET_KEY           required outside LCI_DEBUG
  LCI_ALLOWED_HOSTS        comma-separated host names (default: localhost names)
  LCI_SSL_REDIRECT=0       outside LCI_DEBUG, do not redirect plain HTTP to HTTPS
  LCI_HSTS_SECONDS         outside LCI_DEBUG, Strict-Transport-Security max-age (default a year)
  LCI_SMTP_URL             smtp://user:password@host:port (smtps:// for TLS, ?starttls=1); unset:
                           mail is printed to the console
  LCI_MAIL_FROM            the notices' sender (default "LCI-777 <billing@lci777.example>")
  LCI_MASTER_SECRET_FILE   the provider's master secret (answers keypad request codes)
  LCI_BILLING_SIGNING_KEY  a billing-scope key file (signs directive tokens), optional
  LCI_COMPLIANCE_KEY       the compliance department's key file (work_order scope, or the root
                           key): signs the work orders service centers print
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from provider.database_url import database_url, django_database

BASE_DIR = Path(__file__).resolve().parent
env = os.environ

DEBUG = env.get("LCI_DEBUG", "") == "1"
SECRET_KEY = env.get("LCI_SECRET_KEY") or ("development-only-not-secret" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured
    raise ImproperlyConfigured("LCI_SECRET_KEY is required unless LCI_DEBUG=1")
ALLOWED_HOSTS = [h.strip() for h in env.get("LCI_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
                 .split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "provider.web.portal",
    "provider.web.centers",
    "provider.web.service",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "provider.web.urls"
WSGI_APPLICATION = "provider.web.wsgi.application"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

DATABASE_URL = database_url()
DATABASES = {"default": django_database(DATABASE_URL)}
BILLING_URL = env.get("LCI_BILLING_URL") or DATABASE_URL
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# login throttling: this many failures for one user name or one address within the window
LOGIN_FAILURES_ALLOWED = 5
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"

# cookies travel only over HTTPS outside development
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    # behind a TLS-terminating proxy that sets X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.get("LCI_SSL_REDIRECT", "1") == "1"
    SECURE_HSTS_SECONDS = int(env.get("LCI_HSTS_SECONDS", str(365 * 86400)))

# e-mail: SMTP when LCI_SMTP_URL is set, else printed to the console
DEFAULT_FROM_EMAIL = env.get("LCI_MAIL_FROM", "LCI-777 <billing@lci777.example>")
MAIL_DOMAIN = env.get("LCI_MAIL_DOMAIN", "lci777.example")
_smtp = env.get("LCI_SMTP_URL", "").strip()
if _smtp:
    _p = urlsplit(_smtp)
    _q = dict(parse_qsl(_p.query))
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _p.hostname or "localhost"
    EMAIL_PORT = _p.port or (465 if _p.scheme == "smtps" else 25)
    EMAIL_HOST_USER = unquote(_p.username or "")
    EMAIL_HOST_PASSWORD = unquote(_p.password or "")
    EMAIL_USE_SSL = _p.scheme == "smtps"
    EMAIL_USE_TLS = _q.get("starttls") == "1"
    EMAIL_TIMEOUT = 20
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# a failed send is retried this many times, waiting 2, 4, 8 ... minutes
MAIL_MAX_ATTEMPTS = 8

MASTER_SECRET_FILE = env.get("LCI_MASTER_SECRET_FILE", "")
BILLING_SIGNING_KEY = env.get("LCI_BILLING_SIGNING_KEY", "")
COMPLIANCE_SIGNING_KEY = env.get("LCI_COMPLIANCE_KEY", "")

# the terms and the service agreement a client accepts before installation
TERMS_VERSION = "2024-11-08"
SERVICE_AGREEMENT_VERSION = "2024-11-08"
