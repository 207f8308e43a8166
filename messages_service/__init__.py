"""The licensed Messages app service (PROTOCOL §6-§7): persistence, history, offline
delivery and read state. Not part of this release yet: the hub answers PbxMessages
sessions with ``unlicensed`` or ``unavailable`` until it lands."""

__all__: list[str] = []
