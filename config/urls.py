from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.views.hooks import webhook_receive_view
from engine.operations.health import healthz, readyz
from engine.operations.metrics_view import metrics_view
from webui.views import home

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("hooks/<uuid:endpoint_id>/", webhook_receive_view, name="webhook-receive"),
    path("", include("webui.urls")),
]
