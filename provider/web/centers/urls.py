"""The service center's URLs (under /center/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.day, name="center_day"),
    path("profile/", views.profile, name="center_profile"),
    path("book/", views.book, name="center_book"),
    path("appointments/<int:pk>/", views.detail, name="center_appointment"),
    path("appointments/<int:pk>/work-order/", views.work_order, name="center_work_order"),
    path("appointments/<int:pk>/work-order.toml", views.work_order_file,
         name="center_work_order_file"),
    path("appointments/<int:pk>/complete/", views.complete, name="center_complete"),
    path("appointments/<int:pk>/reschedule/", views.reschedule, name="center_reschedule"),
    path("appointments/<int:pk>/cancel/", views.cancel, name="center_cancel"),
]
