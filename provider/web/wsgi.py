"""The WSGI entry point for a production server (gunicorn provider.web.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "provider.web.settings")
application = get_wsgi_application()
