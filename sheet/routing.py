from django.urls import path

from sheet.consumers import SheetConsumer

websocket_urlpatterns = [
    path("ws/sheets/<int:sheet_id>/", SheetConsumer.as_asgi()),
]
