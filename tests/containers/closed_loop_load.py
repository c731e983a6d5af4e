"""A closed-loop load generator that keeps N Score calls in flight and
records how every call ended: its status code and, for failures, the
message, so that an UNAVAILABLE the server answered before starting a call
("server is draining") or one the client got before sending it (no
connection) can be told from a call lost after it was sent.

Runs in a thread of its own (asyncio + grpc.aio), so a test can `docker
stop` the server while it runs.
"""
import asyncio
import collections
import threading
import time
from typing import Dict, List, Optional, Tuple

import grpc

# UNAVAILABLE messages of calls that never started on the server: it refused
# them while draining (serving/serving_state.h) or answered them once its
# shutdown began (api/call_gate.h: "the request was not started"), or the
# client had no
# connection to send them on (the listener closed, the container gone, or
# docker's port proxy up but nothing behind it).
NEVER_STARTED = ("server is draining", "the request was not started", "failed to connect to all addresses",
                 "connections to all backends failing", "Connection refused")


def never_started(code: grpc.StatusCode, details: str) -> bool:
    return code == grpc.StatusCode.UNAVAILABLE and any(m in details for m in NEVER_STARTED)


class Outcomes:
    """Counts of how calls ended, by (code name, message for failures)."""

    def __init__(self):
        self.by_kind: Dict[Tuple[str, str], int] = collections.Counter()
        self.first_failure_at: Optional[float] = None
        self.last_ok_at: Optional[float] = None

    def add(self, code: grpc.StatusCode, details: str = "") -> None:
        now = time.monotonic()
        if code == grpc.StatusCode.OK:
            self.by_kind[("OK", "")] += 1
            self.last_ok_at = now
            return
        if self.first_failure_at is None:
            self.first_failure_at = now
        self.by_kind[(code.name, details)] += 1

    def count(self, code_name: str) -> int:
        return sum(n for (c, _), n in self.by_kind.items() if c == code_name)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def lost(self) -> List[Tuple[str, str, int]]:
        """Every call that ended other than OK or UNAVAILABLE-before-start."""
        return [(c, d, n) for (c, d), n in sorted(self.by_kind.items())
                if c != "OK" and not never_started(getattr(grpc.StatusCode, c), d)]

    def summary(self) -> dict:
        unavailable = {d: n for (c, d), n in self.by_kind.items() if c == "UNAVAILABLE"}
        return {"total": self.total, "ok": self.count("OK"),
                "unavailable_before_start": sum(
                    n for d, n in unavailable.items()
                    if never_started(grpc.StatusCode.UNAVAILABLE, d)),
                "cancelled": self.count("CANCELLED"),
                "lost": sum(n for _, _, n in self.lost()),
                "by_code": {c: self.count(c) for c in sorted({c for c, _ in self.by_kind})},
                "by_message": {f"{c}: {d}" if d else c: n
                               for (c, d), n in sorted(self.by_kind.items())}}


class ClosedLoopLoad:
    """`in_flight` workers, each sending the next request as soon as its
    previous one ended, over one channel to `target`, until stop(). Every
    call has `timeout_s` as its deadline. After a failure a worker waits
    `backoff_s` (a client would), so a refused connection is not spun on."""

    def __init__(self, target: str, stub_class, requests: list, in_flight: int = 100,
                 timeout_s: float = 30.0, backoff_s: float = 0.05, lb_policy: str = ""):
        self.target = target
        self.stub_class = stub_class
        self.requests = requests
        self.in_flight = in_flight
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.lb_policy = lb_policy
        self.outcomes = Outcomes()
        self._loop = asyncio.new_event_loop()
        self._stop: Optional[asyncio.Event] = None
        self._thread = threading.Thread(target=self._run, name="closed-loop-load", daemon=True)
        self._started = threading.Event()
        self.error: Optional[BaseException] = None

    def start(self) -> "ClosedLoopLoad":
        self._thread.start()
        self._started.wait(10)
        return self

    def wait_for_ok(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.outcomes.count("OK") < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.outcomes.count("OK") >= n

    def stop(self, timeout: float = 60.0) -> Outcomes:
        """Stops sending; returns once every call in flight has ended."""
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"load generator still running {timeout} s after stop()")
        if self.error:
            raise self.error
        return self.outcomes

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as e:  # reported by stop()
            self.error = e
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        options = [("grpc.lb_policy_name", self.lb_policy)] if self.lb_policy else []
        async with grpc.aio.insecure_channel(self.target, options=options) as channel:
            stub = self.stub_class(channel)
            self._started.set()
            await asyncio.gather(*(self._worker(stub, i) for i in range(self.in_flight)))

    async def _worker(self, stub, index: int) -> None:
        n = index
        while not self._stop.is_set():
            request = self.requests[n % len(self.requests)]
            n += self.in_flight
            try:
                await stub.Score(request, timeout=self.timeout_s)
                self.outcomes.add(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as e:
                self.outcomes.add(e.code(), e.details() or "")
                await asyncio.sleep(self.backoff_s)
