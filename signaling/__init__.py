"""The Switchboard hub: clients log in over AppWebsocket, register, and chat as calls.

Start at ``signaling.app.create_app`` (the composition root); the protocol logic lives
in the sans-I/O ``signaling.core`` package.
"""

__all__: list[str] = []
