"""Admission control and deadlines: how much inference work the server accepts at once.

`tensorflow_model_server` bounds its work with the batching queue (`max_enqueued_batches`:
a full queue answers UNAVAILABLE) and gRPC's own thread and memory limits. The Python runtime
cannot interrupt a running signature, so this server bounds work *before* it starts:

* `Admission` -- at most `max_concurrent` inference requests run (or sit in the
  batching queue) at once, at most `max_queued` more wait for a slot; anything beyond is
  answered RESOURCE_EXHAUSTED at once, without touching a model. Health, GetModelStatus and
  GetModelMetadata never take a slot, so they stay fast however loaded the server is.
* `Deadline` -- the earlier of the client's gRPC deadline and the server's
  `--request_timeout_ms`; a request whose deadline has passed, or whose client went away,
  is not started (checked on admission and again when the batching queue hands it out).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import numpy as np

from serving.tensors import ServingError

DEFAULT_REQUEST_TIMEOUT = 60.0  # seconds, for requests whose client set no deadline
DEFAULT_MAX_REQUEST_TOKENS = 8192  # 64 texts (the client's chunk) of 128 subwords


@dataclasses.dataclass(frozen=True)
class WorkLimits:
    """How much inference work the server takes on (see `serving.admission`).

    Args:
        max_concurrent_requests: Predict/Classify requests running or batching at once.
        max_queued_requests: more that may wait for a slot; beyond: RESOURCE_EXHAUSTED.
        request_timeout: seconds; the deadline of a request whose client set none (and the
            cap of longer ones). `None`: only the client's deadline.
        max_request_tokens: per-request bound on the source tokens a request may make the
            model read (estimated from the bytes of its strings, capped by the export's
            `max_source_tokens`); over it: INVALID_ARGUMENT before any compute.
    """

    max_concurrent_requests: int | None = 16
    max_queued_requests: int = 64
    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    max_request_tokens: int | None = DEFAULT_MAX_REQUEST_TOKENS


@dataclasses.dataclass(frozen=True)
class Deadline:
    """When a request stops being worth starting: a `time.monotonic()` instant (`inf`: never)
    and whether its RPC is still alive."""

    at: float = math.inf
    is_active: Callable[[], bool] = lambda: True

    @classmethod
    def for_rpc(cls, context, default_timeout: float | None) -> Deadline:
        """The RPC's own deadline, capped by `default_timeout` seconds (`None`: no cap)."""
        remaining = context.time_remaining() if context is not None else None
        limits = [t for t in (remaining, default_timeout) if t is not None]
        at = time.monotonic() + min(limits) if limits else math.inf
        return cls(at, context.is_active if context is not None else (lambda: True))

    def remaining(self) -> float | None:
        return None if self.at == math.inf else self.at - time.monotonic()

    def check(self, what: str = "the request") -> None:
        """Raises DEADLINE_EXCEEDED / CANCELLED if `what` should not start now."""
        if not self.is_active():
            raise ServingError(grpc.StatusCode.CANCELLED,
                               f"{what} was cancelled by the client before it started")
        if time.monotonic() >= self.at:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"deadline exceeded before {what} started")


class Admission:
    """A bounded number of running and waiting inference requests (thread safe).

    Args:
        max_concurrent: requests that may run (or be queued for a batch) at once; `None`
            for no bound.
        max_queued: requests that may wait for a running slot; beyond that RESOURCE_EXHAUSTED.
    """

    def __init__(self, max_concurrent: int | None = 16, max_queued: int = 64):
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent_requests must be >= 1")
        if max_queued < 0:
            raise ValueError("max_queued_requests must be >= 0")
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self._cv = threading.Condition()
        self.running = 0
        self.waiting = 0

    @property
    def capacity(self) -> int:
        """Threads that admitted requests can hold at most."""
        return (self.max_concurrent or 0) + self.max_queued

    @contextmanager
    def slot(self, deadline: Deadline) -> Iterator[None]:
        """Holds a running slot for the body; waits (at most until `deadline`) when full."""
        self._acquire(deadline)
        try:
            yield
        finally:
            with self._cv:
                self.running -= 1
                self._cv.notify()

    def _acquire(self, deadline: Deadline) -> None:
        with self._cv:
            if self.max_concurrent is None or self.running < self.max_concurrent:
                self.running += 1
                return
            if self.waiting >= self.max_queued:
                raise ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"server overloaded: {self.running} requests running and {self.waiting} "
                    f"waiting (--max_concurrent_requests={self.max_concurrent}, "
                    f"--max_queued_requests={self.max_queued}); retry with backoff")
            self.waiting += 1
            try:
                while self.running >= self.max_concurrent:
                    remaining = deadline.remaining()
                    if remaining is not None and remaining <= 0:
                        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                           "deadline exceeded while waiting for a free slot "
                                           "(server overloaded)")
                    # Wake up now and then to notice a client that went away.
                    self._cv.wait(0.5 if remaining is None else min(remaining, 0.5))
                    if not deadline.is_active():
                        raise ServingError(grpc.StatusCode.CANCELLED,
                                           "cancelled by the client while waiting for a slot")
                self.running += 1
            finally:
                self.waiting -= 1


def estimate_tokens(strings: list[np.ndarray], max_source_tokens: int | None) -> int:
    """An upper bound on the source tokens a request makes the model read.

    A subword covers at least one character, and a UTF-8 character is at least one byte, so a
    text of `n` bytes is at most `n` tokens (+1 for EOS); an export that truncates its
    sources (`max_source_tokens` in its metadata) reads at most that many per text.
    """
    total = 0
    for array in strings:
        for value in array.reshape(-1):
            tokens = len(value) + 1 if isinstance(value, bytes) else 1
            total += tokens if max_source_tokens is None else min(tokens, max_source_tokens)
    return total


def check_token_budget(strings: list[np.ndarray], max_source_tokens: int | None,
                       budget: int | None) -> None:
    """INVALID_ARGUMENT before any compute when a request may read more than `budget`
    tokens (`--max_request_tokens`): retrying the same request cannot succeed."""
    if budget is None:
        return
    tokens = estimate_tokens(strings, max_source_tokens)
    if tokens > budget:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request may read up to {tokens} source tokens, more than this server's "
            f"per-request budget of {budget} (--max_request_tokens); send fewer or shorter "
            f"texts per request")
