from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "provider.web.portal"
    label = "portal"
    verbose_name = "Client portal"
