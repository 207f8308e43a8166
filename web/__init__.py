"""The web client (PROTOCOL §2): static pages that speak only the public protocol.

Nothing here knows the protocol: the pages are plain HTML, CSS and JavaScript modules under
``static/``, served as files. ``/`` is the chat app, ``/agent`` the support console,
``/visit`` the visitor widget, ``/admin`` the operator's pages (their data comes from the
admin API under ``/admin/...``). Every page is sent with a strict Content-Security-Policy:
scripts and styles from this server only, connections to this server only, images from
this server and ``data:``/``blob:`` (previews of attachments).
"""

from .routes import web_routes

__all__ = ["web_routes"]
