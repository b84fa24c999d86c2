"""The service pages under center/ and the visit upload endpoint."""

from django.urls import path

from . import views

urlpatterns = [
    path("center/shipments/", views.shipments, name="service_shipments"),
    path("center/shipments/<int:pk>/", views.shipment, name="service_shipment"),
    path("center/shipments/<int:pk>/received/", views.shipment_received,
         name="service_shipment_received"),
    path("center/exchange-orders/<int:pk>.toml", views.exchange_order_file,
         name="service_exchange_order_file"),
    path("center/visits/", views.visits, name="service_visits"),
    path("center/visits/new/", views.visit_new, name="service_visit_new"),
    path("center/visits/<int:pk>/", views.visit, name="service_visit"),
    path("service/visits/upload/", views.upload, name="service_upload"),
    # the same without its last slash: a POST is never redirected (the signed URL is as typed)
    path("service/visits/upload", views.upload),
]
