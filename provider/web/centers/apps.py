"""Authorized service centers as a Django app (label `centers`)."""

from django.apps import AppConfig


class CentersConfig(AppConfig):
    name = "provider.web.centers"
    label = "centers"
    verbose_name = "Service centers"
