"""The chat client's terminal: lines typed below, messages printed above them.

Plain asyncio reading of stdin, no line-editing library: on a terminal the console turns
off the kernel's own line editing and echo (keeping ISIG, so Ctrl-C is still SIGINT) and
edits the one input line itself: printable characters, Backspace, Ctrl-U, Ctrl-W, Enter,
and Ctrl-D on an empty line for the end. That is what lets a message that arrives while
you type be printed *above* your half-typed line, which is then drawn again, instead of
being cut into it. Cursor keys and history are not offered; a chat line rarely needs
them, and they are not worth a dependency. With stdin not a terminal (a pipe, a file)
lines are read as they come and nothing is drawn.

Nothing blocks in a thread: when the chat ends the process returns to the shell at
once, and no line typed afterwards is read by it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import termios
import unicodedata
from typing import Any, TextIO

__all__ = ["Console"]

_PROMPT = "> "
_ENTER = frozenset("\r\n")
_BACKSPACE = frozenset("\x7f\x08")
_CTRL_D, _CTRL_L, _CTRL_U, _CTRL_W, _ESC = "\x04", "\x0c", "\x15", "\x17", "\x1b"


class Console:
    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._in = (stdin or sys.stdin).fileno()
        self._out = stdout or sys.stdout
        self._tty = os.isatty(self._in) and self._out.isatty()
        self._saved: list[Any] | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending = ""  # a pipe's partial last line
        self._buffer = ""  # the line being typed (terminal)
        self._escape = 0  # 1 after ESC, 2 inside a CSI/SS3 sequence: swallowed
        self._reading = False
        self._ended = False

    def start(self) -> None:
        """Start reading stdin (and, on a terminal, editing the input line)."""
        if self._tty:
            self._saved = termios.tcgetattr(self._in)
            mode = termios.tcgetattr(self._in)
            mode[3] &= ~(termios.ICANON | termios.ECHO)  # lflag; ISIG stays on
            mode[1] |= termios.OPOST | termios.ONLCR  # oflag: "\n" ends a line
            mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
            termios.tcsetattr(self._in, termios.TCSANOW, mode)
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self._in, self._readable)
        except PermissionError:  # a regular file: never blocks, read it all now
            while not self._ended:
                self._readable()
            return
        self._reading = True
        self._draw()

    def close(self) -> None:
        """Stop reading and give the terminal back as it was."""
        if self._reading:
            asyncio.get_running_loop().remove_reader(self._in)
            self._reading = False
        if self._saved is not None:
            self._write("\r\x1b[K")
            termios.tcsetattr(self._in, termios.TCSANOW, self._saved)
            self._saved = None

    async def line(self) -> str | None:
        """The next line typed, without its end; None once stdin has ended."""
        return await self._lines.get()

    def show(self, text: str) -> None:
        """Print ``text`` (one or more lines) above the line being typed."""
        if self._tty and self._reading:
            self._write("\r\x1b[K" + text + "\n")  # the terminal's ONLCR adds the \r
            self._draw()
        else:
            self._write(text + "\n")

    # -- input -------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self._in, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end()
            return
        text = self._decoder.decode(data)
        if self._tty:
            for char in text:
                self._key(char)
            self._draw()
            return
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._lines.put_nowait(line.rstrip("\r"))

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._pending:
            self._lines.put_nowait(self._pending)
            self._pending = ""
        if self._reading:
            asyncio.get_running_loop().remove_reader(self._in)
            self._reading = False
        self._lines.put_nowait(None)

    def _key(self, char: str) -> None:
        if self._escape == 1:
            self._escape = 2 if char in "[O" else 0
        elif self._escape == 2:
            if "\x40" <= char <= "\x7e":
                self._escape = 0
        elif char == _ESC:
            self._escape = 1
        elif char in _ENTER:
            line, self._buffer = self._buffer, ""
            self._write("\r\x1b[K" + _PROMPT + line + "\n")
            self._lines.put_nowait(line)
        elif char in _BACKSPACE:
            self._buffer = self._buffer[:-1]
        elif char == _CTRL_U:
            self._buffer = ""
        elif char == _CTRL_W:
            self._buffer = self._buffer.rstrip().rpartition(" ")[0]
            self._buffer += " " if self._buffer else ""
        elif char == _CTRL_D:
            if not self._buffer:
                self._end()
        elif char == _CTRL_L:
            self._write("\x1b[H\x1b[2J")
        elif char >= " ":
            self._buffer += char

    # -- output ------------------------------------------------------------------------

    def _draw(self) -> None:
        """The prompt and as much of the end of the typed line as fits on one row."""
        if not (self._tty and self._reading):
            return
        try:
            columns = os.get_terminal_size(self._out.fileno()).columns
        except OSError:
            columns = 80
        room = max(columns - len(_PROMPT) - 1, 10)
        shown, width = "", 0
        for char in reversed(self._buffer):
            width += _width(char)
            if width > room:
                break
            shown = char + shown
        self._write("\r\x1b[K" + _PROMPT + shown)

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError):
            self._out.write(text)
            self._out.flush()


def _width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1
