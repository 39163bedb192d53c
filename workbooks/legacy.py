"""What a page of Tabula v1, still open when the server was upgraded to v2, reaches: its paths moved
(``/sheets/{id}/`` is ``/workbooks/{id}/``, as its sheet is now a workbook with the same id).

The old page's socket is told to ``reload``; it then asks for its snapshot at v1's path, is answered
404 with a message asking the person to reload the page, and shows that message. Reloaded, the page
is the new one, at the new path, and sends the edits the old one left waiting in the browser's
storage: operations without a ``sheet``, which a workbook applies to its first sheet.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import HttpResponsePermanentRedirect

from workbooks import api

UPGRADED = "Tabula was upgraded while this page was open: reload the page. Edits not sent yet are kept in this browser and sent then."


def page(request, workbook_id: int, rest: str = ""):
    """A v1 page address: the same workbook's page."""
    return HttpResponsePermanentRedirect(f"/workbooks/{workbook_id}/")


def api_path(request, rest: str = ""):
    """Every v1 API path: gone, with the message the old page shows."""
    return api.error_response("not_found", UPGRADED, 404)


class UpgradedConsumer(AsyncJsonWebsocketConsumer):
    """The socket of a v1 page: told to reload, and nothing else. A user who is not logged in is
    refused, as on every socket."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        await self.accept()
        await self.send_json({"type": "reload"})

    async def receive_json(self, content, **kwargs):
        """Whatever the old page sends stays waiting in its browser, for the new page to send."""
