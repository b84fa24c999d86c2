"""The provider's URLs: the client portal, the service centers' pages (/center/: appointments, shipments, visits), the visit upload, Django's sign-in and password reset, the staff admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from provider.web.portal import views
from provider.web.portal.forms import OutboxPasswordResetForm, ThrottledLoginForm

admin.site.site_header = "LCI-777 provider — staff"

urlpatterns = [
    path("", views.home, name="home"),
    path("invite/<str:token>/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(authentication_form=ThrottledLoginForm),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth_views.PasswordResetView.as_view(
        form_class=OutboxPasswordResetForm), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    path("terms/", views.terms, name="terms"),
    path("account/", views.account, name="account"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<str:number>/", views.invoice, name="invoice"),
    path("payments/", views.payments, name="payments"),
    path("notices/", views.notices, name="notices"),
    path("pay/", views.pay, name="pay"),
    path("card/", views.card, name="card"),
    path("changes/", views.changes, name="changes"),
    path("lockout-code/", views.lockout_code, name="lockout_code"),
    path("appointments/", views.appointments, name="appointments"),
    path("appointments/<int:pk>/reschedule/", views.reschedule, name="reschedule"),
    path("appointments/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("appointments/book/", views.book, name="book"),
    path("center/", include("provider.web.centers.urls")),
    path("", include("provider.web.service.urls")),
    path("admin/", admin.site.urls),
]
