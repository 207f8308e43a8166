"""Questions to Redis that someone waits for: a login's check, a visitor account's making
(docs/protocol.md 12.44).

Theory of operation: each question is a few commands (``fill`` adds them to a
pipeline) and an ``answer`` to call with their replies. Questions asked while a pipeline
is out go together in the next one, on a connection of their own (never behind the
writer's frames, and never more than one connection however many logins come at once).
Every question is answered exactly once and within ``wait`` seconds of being asked: with
its replies, or with None when Redis did not answer in time, the connection broke, or
the node is cut off from Redis (``up`` false: answered at once, nothing is sent). A reply
that is an error stays in the list; the one who asked reads it as no answer. Commands
nobody waits for (``tell``) go the same way, in order with the questions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

__all__ = ["Answer", "Asks", "Fill"]

log = logging.getLogger(__name__)

Fill = Callable[[Any], None]
"""Adds a question's commands to a pipeline."""

Answer = Callable[[list[Any] | None], None]
"""Told a question's replies, or None."""


class _Question:
    __slots__ = ("answer", "counted", "fill", "timer")

    def __init__(self, fill: Fill, answer: Answer, counted: bool = True) -> None:
        self.fill = fill
        self.answer: Answer | None = answer
        self.counted = counted
        """Whether going unanswered counts in ``Asks.unanswered`` (someone waited)."""
        self.timer: asyncio.TimerHandle | None = None

    def settle(self, replies: list[Any] | None) -> None:
        answer, self.answer = self.answer, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if answer is not None:
            try:
                answer(replies)
            except Exception:
                log.exception("cluster: internal error handling an answer from Redis")


class Asks:
    def __init__(self, wait: float, up: Callable[[], bool]) -> None:
        self._wait = wait
        self._up = up
        self.redis: Any = None
        """The connection the questions go on, once ``connect`` gave it."""
        self._waiting: list[_Question] = []
        self._wake = asyncio.Event()
        self.unanswered = 0
        """Questions answered None (Redis late, unreachable, or cut off)."""

    def connect(self, redis: Any) -> None:
        """The connection to ask on (its commands time out after ``wait``)."""
        self.redis = redis

    def usable(self) -> bool:
        """Whether questions may go to Redis now (connected, and the node not cut off)."""
        return self.redis is not None and self._up()

    def ask(self, fill: Fill, answer: Answer) -> None:
        self._put(_Question(fill, answer))

    def tell(self, fill: Fill) -> None:
        """Commands nobody waits for (a right password's forgiveness): they go with the
        next pipeline, or nowhere when the node may not use Redis now, and are never
        counted ``unanswered``."""
        self._put(_Question(fill, _nobody, counted=False))

    def _put(self, question: _Question) -> None:
        loop = asyncio.get_running_loop()
        if self.redis is None or not self._up():
            self.unanswered += question.counted
            loop.call_soon(question.settle, None)
            return
        question.timer = loop.call_later(self._wait, self._late, question)
        self._waiting.append(question)
        self._wake.set()

    async def asked(self, fill: Fill) -> list[Any] | None:
        """``ask``, for a caller that awaits the replies."""
        done: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()

        def answer(replies: list[Any] | None) -> None:
            if not done.done():  # else the caller was cancelled meanwhile
                done.set_result(replies)

        self.ask(fill, answer)
        return await done

    def _late(self, question: _Question) -> None:
        question.timer = None
        if question.answer is not None:
            self.unanswered += question.counted
            question.settle(None)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            questions = [q for q in self._waiting if q.answer is not None]
            self._waiting = []
            if questions:
                await self._send(questions)

    async def _send(self, questions: list[_Question]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        spans = []
        for question in questions:
            start = len(pipe)
            question.fill(pipe)
            spans.append((start, len(pipe)))
        try:
            replies: list[Any] | None = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            log.warning("cluster: Redis did not answer %d login questions (%s)", len(spans), exc)
            replies = None
        for question, (start, end) in zip(questions, spans, strict=True):
            if question.answer is not None and replies is None:
                self.unanswered += question.counted
            question.settle(replies[start:end] if replies is not None else None)


def _nobody(replies: list[Any] | None) -> None:
    """The answer to commands nobody waits for (``tell``)."""
