"""What the rest of Switchboard needs of a buffer store (PROTOCOL §8).

``LocalStore`` (a folder, for one process) and ``SharedStore`` (a shared folder and
PostgreSQL, for several) are the two there are; the routes and the messages service are
written against this protocol, so either takes the other's place without them changing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from pathlib import Path
from typing import Protocol

from .model import Buffer, Keys, Owner, Usage

__all__ = ["BufferStore"]


class BufferStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def used(self, owner: Owner) -> int: ...

    async def room(self, owner: Owner) -> int: ...

    async def create(
        self, owner: Owner, name: str | None, mime: str | None, announced: int | None
    ) -> tuple[Buffer, Keys]: ...

    async def get(self, buffer_id: str) -> Buffer | None: ...

    def opens(self, buffer: Buffer, key: str) -> bool: ...

    def check_alive(self, buffer: Buffer, now: float) -> None: ...

    async def upload(
        self,
        buffer_id: str,
        upload_key: str,
        chunks: AsyncIterable[bytes],
        *,
        declared: int | None = None,
        claimed_mime: str | None = None,
    ) -> Buffer: ...

    async def grant(self, temporary: Buffer, owner: Owner, buffer_id: str) -> Buffer: ...

    async def delete(self, buffer_id: str) -> bool: ...

    def blob(self, buffer: Buffer) -> Path: ...

    async def collect_garbage(self) -> Usage: ...
