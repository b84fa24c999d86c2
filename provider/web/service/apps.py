from django.apps import AppConfig


class ServiceConfig(AppConfig):
    """Work at a service center outside appointments: visits, visit uploads, shipments."""

    name = "provider.web.service"
    label = "service"
    verbose_name = "Service visits and shipments"
