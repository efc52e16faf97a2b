"""A small HTTP proxy between the collector and the service that injects faults.

Per request: with probability `p_5xx` it answers 503 itself; with probability `p_cut` it cuts
the connection, half of the time before forwarding and half of the time after the service
answered (the service committed, the client never hears it). Otherwise it forwards the request
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
            x = self.rng.random()
            if x < self.p_5xx:
                self.counts["injected_503"] += 1
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_503), _503)
                )
                await writer.drain()
                return
            cut = x < self.p_5xx + self.p_cut
            if cut and self.rng.random() < 0.5:
                self.counts["cut_before"] += 1
                return
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
