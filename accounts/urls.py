"""URLs of the token and account endpoints (under /api/v1/auth/)."""

from django.urls import path

from accounts import apis

urlpatterns = [
    path("token/", apis.TokenObtainApi.as_view(), name="token-obtain"),
    path("token/refresh/", apis.TokenRefreshApi.as_view(), name="token-refresh"),
    path("token/revoke/", apis.TokenRevokeApi.as_view(), name="token-revoke"),
    path("me/", apis.MeApi.as_view(), name="me"),
]
