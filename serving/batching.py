"""Server-side batching, configured like `tensorflow_model_server --enable_batching`.

The parameters file is TF Serving's text-format `BatchingParameters`
(`tensorflow_serving/servables/tensorflow/session_bundle_config.proto`):

```text
max_batch_size { value: 32 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
allowed_batch_sizes: 8
allowed_batch_sizes: 32
pad_variable_length_inputs: true
```

The `tensorflow-serving-api` wheel does not ship that proto's Python module, so
`serving.protos.BatchingParameters` is rebuilt from a descriptor with the upstream names,
numbers and types (fields 1-7), which keeps the text and wire formats identical.

Semantics follow TF Serving's batching session: concurrent requests for the same model version
and signature are concatenated along dimension 0 (up to `max_batch_size`, waiting at most
`batch_timeout_micros` for a batch to fill), padded up to the next `allowed_batch_sizes`
entry by repeating the last row, run once, and the outputs are split back along dimension 0.
Variable-length inputs (same rank, different trailing dimensions) are padded (zeros / empty
strings) when `pad_variable_length_inputs` is true, otherwise they go into separate batches.
Like TF Serving, a request's outputs come back with the trailing dimensions of the whole batch
(e.g. `source_tokens` padded to the longest sentence in the batch). Differences: a request
larger than `max_batch_size` is run on its own instead of being rejected, and when a batch
fails each of its requests is retried alone so that one bad request cannot fail the others.

Deadlines: a caller waits for its rows at most until its `serving.admission.Deadline`;
a task whose deadline passed or whose RPC was cancelled while it was queued is dropped when a
batch thread dequeues it, so no model time is spent on answers nobody will read.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import grpc
import numpy as np
from google.protobuf import text_format

from serving.admission import Deadline
from serving.protos import BatchingParameters
from serving.tensors import ServingError


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """Plain-Python batching parameters; defaults are TF Serving's."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 1
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if self.num_batch_threads < 1:
            raise ValueError("num_batch_threads must be >= 1")
        if self.batch_timeout_micros < 0 or self.max_enqueued_batches < 1:
            raise ValueError("batch_timeout_micros must be >= 0 and max_enqueued_batches >= 1")
        sizes = list(self.allowed_batch_sizes)
        if sizes:
            if sizes != sorted(set(sizes)) or sizes[0] < 1:
                raise ValueError("allowed_batch_sizes must be increasing positive integers")
            if sizes[-1] != self.max_batch_size:
                raise ValueError("the last allowed_batch_sizes entry must equal max_batch_size")

    @classmethod
    def from_proto(cls, proto) -> BatchingOptions:
        defaults = cls()

        def get(field):
            if proto.HasField(field):
                return getattr(proto, field).value
            return getattr(defaults, field)

        return cls(
            max_batch_size=get("max_batch_size"),
            batch_timeout_micros=get("batch_timeout_micros"),
            max_enqueued_batches=get("max_enqueued_batches"),
            num_batch_threads=get("num_batch_threads"),
            allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
            pad_variable_length_inputs=proto.pad_variable_length_inputs,
        )

    @classmethod
    def from_text(cls, text: str) -> BatchingOptions:
        proto = BatchingParameters()
        text_format.Parse(text, proto)
        return cls.from_proto(proto)

    @classmethod
    def from_file(cls, path) -> BatchingOptions:
        with open(path, encoding="utf-8") as f:
            return cls.from_text(f.read())

    def to_proto(self):
        proto = BatchingParameters()
        proto.max_batch_size.value = self.max_batch_size
        proto.batch_timeout_micros.value = self.batch_timeout_micros
        proto.max_enqueued_batches.value = self.max_enqueued_batches
        proto.num_batch_threads.value = self.num_batch_threads
        proto.allowed_batch_sizes.extend(self.allowed_batch_sizes)
        proto.pad_variable_length_inputs = self.pad_variable_length_inputs
        return proto

    def to_text(self) -> str:
        return text_format.MessageToString(self.to_proto())


RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    size: int
    shape_key: tuple
    future: Future
    enqueued: float
    deadline: Deadline = dataclasses.field(default_factory=Deadline)
    abandoned: bool = False  # its caller stopped waiting (deadline): drop it

    def expired(self) -> ServingError | None:
        """Why this task must not run any more, or None."""
        if self.abandoned:
            return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                "deadline exceeded while queued for batching")
        try:
            self.deadline.check("the batched request")
        except ServingError as error:
            return error
        return None


class _Queue:
    def __init__(self, run: RunFn):
        self.run = run
        self.tasks: collections.deque[_Task] = collections.deque()
        self.pending = 0  # elements waiting


def _shape_key(inputs: dict[str, np.ndarray], pad: bool) -> tuple:
    if pad:
        return tuple(sorted((k, v.dtype.str, v.ndim) for k, v in inputs.items()))
    return tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))


def _pad_to(array: np.ndarray, trailing: tuple[int, ...]) -> np.ndarray:
    if array.shape[1:] == trailing:
        return array
    widths = [(0, 0)] + [(0, t - s) for s, t in zip(array.shape[1:], trailing, strict=True)]
    fill = b"" if array.dtype == object else 0
    return np.pad(array, widths, constant_values=fill)


def merge(parts: list[np.ndarray], target_rows: int | None = None) -> np.ndarray:
    """Concatenates along dim 0, padding trailing dims to the largest; optional row padding."""
    trailing = tuple(max(dims) for dims in zip(*(p.shape[1:] for p in parts), strict=True))
    merged = np.concatenate([_pad_to(p, trailing) for p in parts], axis=0)
    if target_rows is not None and target_rows > merged.shape[0]:
        filler = np.repeat(merged[-1:], target_rows - merged.shape[0], axis=0)
        merged = np.concatenate([merged, filler], axis=0)
    return merged


class BatchScheduler:
    """Shared batch scheduler: one queue per (servable, signature, outputs), N batch threads."""

    def __init__(self, options: BatchingOptions):
        self.options = options
        self._cv = threading.Condition()
        self._queues: dict[tuple, _Queue] = {}
        self._closed = False
        self.batches_run = 0
        self.batch_elements = 0
        self.dropped = 0  # tasks dropped because their deadline passed or RPC was cancelled
        self._threads = [threading.Thread(target=self._work, name=f"serving-batch-{i}",
                                          daemon=True)
                         for i in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    # -- caller side
    def run(self, key: tuple, run: RunFn, inputs: dict[str, np.ndarray],
            deadline: Deadline | None = None) -> dict[str, np.ndarray]:
        """Runs `run(inputs)` as part of a batch; blocks until this request's rows are back
        or `deadline` passes (DEADLINE_EXCEEDED; the queued task is then dropped)."""
        deadline = deadline or Deadline()
        sizes = {a.shape[0] for a in inputs.values() if a.ndim >= 1}
        scalar = any(a.ndim == 0 for a in inputs.values())
        if len(sizes) != 1 or scalar:
            return run(inputs)  # nothing to batch along
        size = sizes.pop()
        if size > self.options.max_batch_size:
            return run(inputs)
        task = _Task(inputs, size, _shape_key(inputs, self.options.pad_variable_length_inputs),
                     Future(), time.monotonic(), deadline)
        with self._cv:
            if self._closed:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "batch scheduler is shut down")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(run)
            limit = self.options.max_enqueued_batches * self.options.max_batch_size
            if queue.pending + size > limit:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full")
            queue.tasks.append(task)
            queue.pending += size
            self._cv.notify()
        try:
            return task.future.result(deadline.remaining())
        except FutureTimeout:
            task.abandoned = True
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               "deadline exceeded while waiting for the batch to run") from None

    # -- batch threads
    def _ready_queue(self, now: float) -> tuple[_Queue | None, float | None]:
        """The queue whose batch should run now, else the time until the next deadline."""
        timeout = self.options.batch_timeout_micros / 1e6
        best, best_time, wait = None, None, None
        for queue in self._queues.values():
            if not queue.tasks:
                continue
            head = queue.tasks[0]
            due = head.enqueued + timeout
            if queue.pending >= self.options.max_batch_size or due <= now:
                if best is None or head.enqueued < best_time:
                    best, best_time = queue, head.enqueued
            else:
                wait = due - now if wait is None else min(wait, due - now)
        return best, wait

    def _drop_expired(self, queue: _Queue) -> None:
        """Answers and removes the tasks nobody waits for any more (called under the lock)."""
        alive = collections.deque()
        for task in queue.tasks:
            error = task.expired()
            if error is None:
                alive.append(task)
            else:
                queue.pending -= task.size
                self.dropped += 1
                task.future.set_exception(error)
        queue.tasks = alive

    def _take(self, queue: _Queue) -> list[_Task]:
        first = queue.tasks.popleft()
        batch, total, rest = [first], first.size, collections.deque()
        while queue.tasks:
            task = queue.tasks.popleft()
            fits = total + task.size <= self.options.max_batch_size
            if task.shape_key == first.shape_key and fits:
                batch.append(task)
                total += task.size
            else:
                rest.append(task)
                if total >= self.options.max_batch_size:
                    break
        rest.extend(queue.tasks)
        queue.tasks = rest
        queue.pending -= total
        return batch

    def _work(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._closed and not any(q.tasks for q in self._queues.values()):
                        return
                    queue, wait = self._ready_queue(time.monotonic())
                    if queue is not None:
                        self._drop_expired(queue)
                        if queue.tasks:
                            break
                        continue
                    self._cv.wait(wait)
                batch = self._take(queue)
                for key in [k for k, q in self._queues.items() if not q.tasks and q is queue]:
                    del self._queues[key]  # drop idle queues (e.g. of unloaded versions)
            self._process(queue.run, batch)

    def _process(self, run: RunFn, batch: list[_Task]) -> None:
        if len(batch) == 1 and not self.options.allowed_batch_sizes:
            self._run_one(run, batch[0])
            return
        total = sum(t.size for t in batch)
        rows = total
        for allowed in self.options.allowed_batch_sizes:
            if allowed >= total:
                rows = allowed
                break
        try:
            merged = {k: merge([t.inputs[k] for t in batch], rows) for k in batch[0].inputs}
            outputs = run(merged)
            if any(v.ndim == 0 or v.shape[0] != rows for v in outputs.values()):
                raise ValueError("an output is not batched along dimension 0")
        except Exception:  # noqa: BLE001
            for task in batch:  # one bad request must not fail the others: retry alone
                self._run_one(run, task)
            return
        self.batches_run += 1
        self.batch_elements += total
        offset = 0
        for task in batch:
            task.future.set_result({k: v[offset:offset + task.size] for k, v in outputs.items()})
            offset += task.size

    @staticmethod
    def _run_one(run: RunFn, task: _Task) -> None:
        try:
            task.future.set_result(run(task.inputs))
        except BaseException as error:  # noqa: BLE001 - re-raised in the request thread
            task.future.set_exception(error)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
