from django.contrib import admin
from django.urls import include, path

from accounts.forms import AdminLoginForm

admin.site.login_form = AdminLoginForm  # the admin's login is throttled like the site's

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("sheet.urls")),
]

handler404 = "sheet.api.not_found"
