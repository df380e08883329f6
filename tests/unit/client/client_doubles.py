"""Doubles for the client's unit tests: a server of queued answers behind httpx.MockTransport,
and a clock whose sleeps only move its own time (so a Retry-After of 30 s takes no time)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from foretell.client import AsyncClient, Client, Retry
from foretell.client.retry import Clock


class FakeClock(Clock):
    def __init__(self) -> None:
        self.time = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Answers:
    """Answers each request with the next queued response; keeps the requests."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.answers, f"unexpected request {request.method} {request.url}"
        return self.answers.pop(0)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def refused(
    status: int, detail: Any, retry_after: str | None = None, code: str | None = None
) -> httpx.Response:
    """An error answer as foretell sends it; `code`: its X-Error-Code header."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    if code is not None:
        headers["X-Error-Code"] = code
    return httpx.Response(status, json={"detail": detail}, headers=headers)


def record(status: str, pid: str = "p1", **fields: Any) -> dict[str, Any]:
    return {"id": pid, "status": status, **fields}


NO_JITTER = Retry(random=lambda: 0.0)


def sync_client(
    answers: Answers, clock: FakeClock, retry: Retry = NO_JITTER, **kwargs: Any
) -> Client:
    transport = httpx.MockTransport(answers)
    return Client("http://t", "k", retry=retry, transport=transport, clock=clock, **kwargs)


def async_client(
    answers: Answers, clock: FakeClock, retry: Retry = NO_JITTER, **kwargs: Any
) -> AsyncClient:
    transport = httpx.MockTransport(answers)
    return AsyncClient("http://t", "k", retry=retry, transport=transport, clock=clock, **kwargs)


KINDS = ("sync", "async")


def run(kind: str, answers: Answers, clock: FakeClock, action: Any, **kwargs: Any) -> Any:
    """`action(client)` on a Client (kind "sync") or an AsyncClient ("async": awaited), the
    same test for both."""
    if kind == "sync":
        with sync_client(answers, clock, **kwargs) as client:
            return action(client)

    async def main() -> Any:
        async with async_client(answers, clock, **kwargs) as client:
            return await action(client)

    return asyncio.run(main())
