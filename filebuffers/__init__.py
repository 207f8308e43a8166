"""Temporary and permanent file buffers for attachments (PROTOCOL §8). Not part of this
release yet."""

__all__: list[str] = []
