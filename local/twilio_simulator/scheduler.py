"""One thread that runs actions at their time (monotonic clock): status changes, callback retries,
scheduled sends. Actions are short; anything slow (an HTTP callback) is handed to a pool."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._ids = itertools.count()
        self._canceled: set[int] = set()
        self._condition = threading.Condition()
        self._running = 0  # actions being run now (wait_idle waits for them too)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="twilio-simulator-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call_at(self, when: float, action: Callable[[], None]) -> int:
        """Run `action` at monotonic time `when` (at once when past); an id for `cancel`."""
        with self._condition:
            handle = next(self._ids)
            heapq.heappush(self._heap, (when, handle, action))
            self._condition.notify()
            return handle

    def call_later(self, delay: float, action: Callable[[], None]) -> int:
        return self.call_at(time.monotonic() + max(0.0, delay), action)

    def cancel(self, handle: int) -> None:
        with self._condition:
            self._canceled.add(handle)

    def clear(self) -> None:
        with self._condition:
            self._heap.clear()
            self._canceled.clear()

    def pending(self) -> int:
        with self._condition:
            return sum(1 for _, handle, _ in self._heap if handle not in self._canceled) + self._running

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._condition:
                action = self._next_due()
                if action is None:
                    return
                self._running += 1
            try:
                action()
            except Exception:  # an action's bug must not stop every later one
                log.exception("twilio simulator: a scheduled action failed")
            finally:
                with self._condition:
                    self._running -= 1

    def _next_due(self) -> Callable[[], None] | None:
        """Wait (holding the condition) for the next action that is due; None once stopped."""
        while not self._stopped:
            if not self._heap:
                self._condition.wait()
                continue
            when, handle, action = self._heap[0]
            delay = when - time.monotonic()
            if delay > 0:
                self._condition.wait(delay)
                continue
            heapq.heappop(self._heap)
            if handle in self._canceled:
                self._canceled.discard(handle)
                continue
            return action
        return None
