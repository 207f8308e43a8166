"""Client frames cut from the byte stream without ``websockets``' parser (RFC 6455 §5.2).

Why: ``websockets`` parses every frame with a generator reading through a stream
reader, several Python calls and objects per frame, and uvicorn dispatches each event
once more: about 4 µs of the hub's 40-60 µs per relayed message (docs/benchmarks.md).
Nearly every frame a client sends is one whole, masked text message, so the transport
cuts those itself (a header, a length, a mask applied in C) and hands everything else —
fragments, control frames, binary, anything malformed — to ``websockets`` unchanged,
always as whole frames, so that its parser is at a frame's start each time and answers
(pong, close, protocol errors) exactly as before.

``frame_end`` is pure: it takes bytes and says where a frame ends.
"""

from __future__ import annotations

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets without its C extension
    from websockets.utils import apply_mask

__all__ = ["FINAL_TEXT", "MASKED", "apply_mask", "frame_end"]

FINAL_TEXT = 0x81
"""First byte of a whole text message: FIN set, no reserved bits, opcode 1."""

MASKED = 0x80


def frame_end(data: bytes | bytearray, start: int, limit: int) -> tuple[int, int] | None:
    """Where the frame starting at ``start`` of ``data`` has its payload: ``(payload
    start, frame end)``, or None while its header is incomplete. A frame announcing a
    payload over ``limit`` bytes gives ``(-1, -1)``: it is not to be waited for."""
    available = len(data) - start
    if available < 2:
        return None
    second = data[start + 1]
    size = second & 0x7F
    if size < 126:
        header = 2
    elif size == 126:  # most chat frames: 126 bytes to 64 KiB, read without a slice
        if available < 4:
            return None
        size = data[start + 2] << 8 | data[start + 3]
        header = 4
    else:
        if available < 10:
            return None
        size = int.from_bytes(data[start + 2 : start + 10], "big")
        header = 10
    if second & MASKED:
        header += 4
    if size > limit:
        return -1, -1
    if available < header:
        return None
    payload = start + header
    return payload, payload + size
