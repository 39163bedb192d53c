from django.contrib import admin
from django.urls import include, path

from accounts.forms import AdminLoginForm

admin.site.login_form = AdminLoginForm  # the admin's login is throttled like the site's

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("workbooks.urls")),
]

handler404 = "workbooks.api.not_found"
