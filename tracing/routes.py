"""The operator's view of the trace (PROTOCOL §10.1): read and switch flags, read records.

``GET /admin/trace`` → ``{"flags":{…},"filter":{…}}``; ``PUT /admin/trace`` with
``{"flags":{"pbx":true},"filter":{"user":"alice"}}`` (or the flags at the top level)
switches at once, without a restart; ``GET /admin/trace/log?since=<seq>`` returns the
records after ``seq`` and the number to ask from next; ``GET /admin/trace/download`` the
whole buffer as text; ``GET /debug.xml`` shows the flags as XML and sets them with
``?<flag>=on|off``. Every route needs the admin login (``authorized``, given by the
composition root); errors are JSON ``{code, text}`` (§10.3).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from xml.sax.saxutils import quoteattr

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from .tracer import SUBSYSTEMS, TraceFilter, Tracer

__all__ = ["TraceRoutes"]

_MAX_BODY = 64 * 1024
_REALM = 'Basic realm="Switchboard admin", charset="UTF-8"'


class TraceRoutes:
    def __init__(self, tracer: Tracer, authorized: Callable[[Request], Awaitable[bool]]) -> None:
        self.tracer = tracer
        self._authorized = authorized

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin/trace", self._guard(self._get), methods=["GET"]),
            Route("/admin/trace", self._guard(self._put), methods=["PUT"]),
            Route("/admin/trace/log", self._guard(self._log), methods=["GET"]),
            Route("/admin/trace/download", self._guard(self._download), methods=["GET"]),
            Route("/debug.xml", self._guard(self._debug_xml), methods=["GET"]),
        ]

    def _guard(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def guarded(request: Request) -> Response:
            if not await self._authorized(request):
                return _error(401, "forbidden", "admin login needed", {"WWW-Authenticate": _REALM})
            response: Response = await handler(request)
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded

    async def _get(self, request: Request) -> Response:
        return JSONResponse(self.tracer.state())

    async def _put(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _error(413, "too_big", "request too big")
        try:
            data = json.loads(body)
            flags, trace_filter = _changes(data)
        except (ValueError, TypeError, RecursionError) as exc:
            return _error(400, "bad_json", str(exc)[:200])
        self.tracer.set_flags(flags)
        if trace_filter is not None:
            self.tracer.filter = trace_filter
        return JSONResponse(self.tracer.state())

    async def _log(self, request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", "0"))
            limit = min(10_000, max(1, int(request.query_params.get("limit", "1000"))))
        except ValueError:
            return _error(400, "bad_json", "since and limit must be whole numbers")
        return JSONResponse(self.tracer.records_json(since, limit))

    async def _download(self, request: Request) -> Response:
        headers = {"Content-Disposition": 'attachment; filename="switchboard-trace.txt"'}
        return PlainTextResponse(self.tracer.text(), headers=headers)

    async def _debug_xml(self, request: Request) -> Response:
        changes: dict[str, bool] = {}
        for name, value in request.query_params.items():
            if name not in SUBSYSTEMS or value not in ("on", "off"):
                return _error(400, "bad_json", f"use ?<flag>=on|off with a flag of {SUBSYSTEMS}")
            changes[name] = value == "on"
        self.tracer.set_flags(changes)
        items = "".join(
            f"<flag name={quoteattr(name)} on={quoteattr(str(on).lower())}/>"
            for name, on in self.tracer.flags().items()
        )
        xml = f'<?xml version="1.0" encoding="utf-8"?>\n<debug><trace>{items}</trace></debug>\n'
        return Response(xml, media_type="application/xml")


def _changes(data: object) -> tuple[dict[str, bool], TraceFilter | None]:
    """The flags to switch and the new filter (None: unchanged) of a PUT body."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    raw = data.get("flags", {k: v for k, v in data.items() if k != "filter"})
    if not isinstance(raw, dict):
        raise ValueError("flags: expected an object of flag names to true or false")
    flags: dict[str, bool] = {}
    for name, on in raw.items():
        if name not in SUBSYSTEMS:
            raise ValueError(f"unknown trace flag {name[:40]!r}; flags are {', '.join(SUBSYSTEMS)}")
        if not isinstance(on, bool):
            raise ValueError(f"{name}: expected true or false")
        flags[name] = on
    trace_filter = None
    if "filter" in data:
        given = data["filter"] or {}
        if not isinstance(given, dict) or not all(
            isinstance(given.get(key, ""), str) for key in ("user", "domain")
        ):
            raise ValueError("filter: expected {user, domain} strings")
        trace_filter = TraceFilter(user=given.get("user", ""), domain=given.get("domain", ""))
    return flags, trace_filter


def _error(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "text": text}, status_code=status, headers=headers)
