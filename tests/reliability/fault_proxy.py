"""A small HTTP proxy between the collector and the service that injects faults.

Of every 20 requests (shuffled), a fraction `p_5xx` it answers 503 itself and a fraction
`p_cut` it cuts, alternately before forwarding and after the service answered (the service
committed, the client never hears it). Otherwise it forwards the request
and relays the answer. When the service is down the connection is closed unanswered. One
request per connection (`Connection: close`). Runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from typing import Self

from tests.service_process import free_port

_503 = b'{"detail":"injected outage"}'
# Faults are drawn in windows of this many requests, so that the rates hold in a short run.
WINDOW = 20
# A request the service has not answered in this time is dropped (the collector times out).
UPSTREAM_TIMEOUT_S = 30.0


class FaultProxy:
    """127.0.0.1:`port` -> 127.0.0.1:`upstream_port`, with injected faults (counted)."""

    def __init__(self, upstream_port: int, *, p_5xx: float, p_cut: float, seed: int) -> None:
        self.upstream_port = upstream_port
        self.p_5xx, self.p_cut = p_5xx, p_cut
        self.rng = random.Random(seed)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.counts: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._handlers: set[asyncio.Task[None]] = set()
        self._plan: list[str | None] = []
        self._windows = 0

    def _next_fault(self) -> str | None:
        """Faults in shuffled windows of 20 requests: exactly `p_5xx` and `p_cut` of each
        window (the cuts alternate between before forwarding and after the answer)."""
        if not self._plan:
            n_5xx, n_cut = round(self.p_5xx * WINDOW), round(self.p_cut * WINDOW)
            cut = "cut_after" if self._windows % 2 == 0 else "cut_before"
            self._plan = ["503"] * n_5xx + [cut] * n_cut + [None] * (WINDOW - n_5xx - n_cut)
            self.rng.shuffle(self._plan)
            self._windows += 1
        return self._plan.pop()

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        self._server.close()
        here = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not here]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)  # a strong reference: asyncio keeps only weak ones
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            kept = [lines[0]]
            for line in lines[1:]:
                name = line.split(":", 1)[0].strip().lower()
                if name == "content-length":
                    length = int(line.split(":", 1)[1])
                if name and name != "connection":
                    kept.append(line)
            body = await reader.readexactly(length)
            request = ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode() + body
            self.counts["requests"] += 1
            fault = self._next_fault()
            if fault == "503":
                self.counts["injected_503"] += 1
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_503), _503)
                )
                await writer.drain()
                return
            if fault == "cut_before":
                self.counts["cut_before"] += 1
                return
            cut = fault == "cut_after"
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self.upstream_port
                )
            except OSError:
                self.counts["service_down"] += 1
                return
            up_writer.write(request)
            await up_writer.drain()
            # The service closes after its answer (a killed one: reset, or never).
            answer = await asyncio.wait_for(up_reader.read(), UPSTREAM_TIMEOUT_S)
            up_writer.close()
            if not answer:
                self.counts["service_down"] += 1
                return
            if cut:
                self.counts["cut_after"] += 1
                return
            self.counts["forwarded"] += 1
            writer.write(answer)
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            TimeoutError,
        ):
            self.counts["client_gone"] += 1
        finally:
            writer.close()
            self._handlers.discard(task)
