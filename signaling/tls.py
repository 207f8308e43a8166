"""TLS without a proxy (``[server] tls_cert`` / ``tls_key``): what changes besides uvicorn
speaking HTTPS and wss:// on the port (``server.uvicorn_config``).

The hub of a one-process server reaches its own messages service over its own port, so
with TLS on that link is wss:// too. It connects to an address on this machine, which the
certificate (made for the name clients use) does not name; rather than switch checks
off, the link trusts exactly the configured certificate and nothing else, by its key and
not by its name.
"""

from __future__ import annotations

import ssl

from config import Config

__all__ = ["own_certificate", "web_schemes"]


def web_schemes(config: Config) -> tuple[str, str]:
    """The schemes clients use for pages and for WebSockets: ``https``/``wss`` with TLS."""
    return ("https", "wss") if config.server.tls_cert else ("http", "ws")


def own_certificate(config: Config) -> ssl.SSLContext | None:
    """A client context that trusts this server's own certificate only (None without TLS)."""
    if not config.server.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # a loopback address: the certificate names the host
    context.load_verify_locations(cafile=config.server.tls_cert)
    # the leaf itself is the anchor, whoever issued it (no chain to a root is needed)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context
