"""``switchboard chat`` in a pseudo-terminal, driven as a person at a keyboard would.

The child process gets the pty's slave as stdin, stdout, stderr *and* controlling
terminal (a session of its own, then ``TIOCSCTTY``), so that Ctrl-C typed into the
master reaches it as SIGINT from the terminal's line discipline, exactly as in a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

__all__ = ["ChatTerminal"]

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 20.0
"""How long to wait for the client before the test fails (never a timing assert)."""


def _take_terminal() -> None:
    """In the child, after ``setsid``: make stdin (the pty) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class ChatTerminal:
    def __init__(self, *args: str) -> None:
        self._master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.set_blocking(self._master, False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "signaling.cli", "chat", *args],
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self._output = bytearray()
        self._seen = 0

    @property
    def text(self) -> str:
        """Everything the client wrote to its terminal so far."""
        return self._output.decode(errors="replace")

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    async def expect(self, wanted: str) -> str:
        """Wait until ``wanted`` appears after what earlier calls matched; returns the
        output up to and including it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while True:
            exited = self.process.poll() is not None
            self._drain()
            found = self.text.find(wanted, self._seen)
            if found >= 0:
                start, self._seen = self._seen, found + len(wanted)
                return self.text[start : self._seen]
            assert not exited, (
                f"the client exited ({self.process.returncode}) without {wanted!r}:\n{self.text}"
            )
            assert loop.time() < deadline, f"no {wanted!r} from the client:\n{self.text}"
            await asyncio.sleep(0.02)

    async def exited(self) -> int:
        """The client's exit status, once it exits by itself."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while self.process.poll() is None:
            self._drain()
            assert loop.time() < deadline, f"the client did not exit:\n{self.text}"
            await asyncio.sleep(0.02)
        self._drain()
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self._master)

    def _drain(self) -> bool:
        """Read what is there; True when something was."""
        got = False
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except (BlockingIOError, OSError):  # OSError (EIO): the child closed the pty
                return got
            if not chunk:
                return got
            self._output += chunk
            got = True
