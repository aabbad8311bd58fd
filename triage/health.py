"""How a background task is doing, for /readyz: a task that fails cycle after cycle makes the service
not ready, with its last error, instead of failing quietly in the log."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

FAILING_AFTER = 3  # consecutive failed cycles


@dataclass
class TaskHealth:
    name: str
    failures: int = 0  # consecutive
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def succeeded(self) -> None:
        with self._lock:
            self.failures, self.last_error = 0, ""

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]

    def problem(self) -> str:
        """Why the task counts as failing ('' while it works)."""
        with self._lock:
            if self.failures < FAILING_AFTER:
                return ""
            return f"{self.name}: {self.failures} cycles failed in a row; last: {self.last_error}"
