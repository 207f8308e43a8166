"""The licensed Messages app service (PROTOCOL §6-§7, §12.10): persistence, history,
offline delivery, read state, unread badges and groups.

The hub reaches it over an AppWebsocket at ``/messages/websocket``, logged in as App
object ``messages``. ``MessagesService`` is mounted by the embedded hub;
``create_messages_app`` serves it alone. Layers: routes (``connection``) -> ``handlers``
and ``writer`` -> ``storage`` (the only package that imports Tortoise).
"""

from .app import MESSAGES_PATH, MessagesService, create_messages_app
from .errors import MessagesServiceError

__all__ = ["MESSAGES_PATH", "MessagesService", "MessagesServiceError", "create_messages_app"]
