"""The client portal as a Django app (label `portal`)."""

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "provider.web.portal"
    label = "portal"
    verbose_name = "Client portal"
