"""Long-running work in a background thread, with progress and cancellation.

A :class:`Job` runs one function ``work(progress, cancel)`` in a daemon thread. The function reports
``progress(step, fraction)`` (the same signature as :func:`ecpif.pipeline.run`'s ``progress``) and
checks ``cancel`` (a :class:`threading.Event`, which :func:`ecpif.pipeline.run` accepts as is).
The web page polls :meth:`Job.snapshot`; nothing here knows about the web framework, so the runner
is tested on its own.

Design decisions
----------------
* **A thread, not a process.** The pipeline already takes a progress callback and a cancel event,
  and its results (fitted estimators, frames) stay in memory for the following pages, so a thread
  in the server process needs no pickling and no task queue. The heavy numerical work runs in
  joblib worker processes or in NumPy / scikit-learn code that releases the GIL, so the server
  keeps answering the page's polls while a study runs.
* **Cancellation is cooperative.** A scikit-learn fit cannot be interrupted safely, so
  :meth:`Job.cancel` sets the event and the status becomes ``"cancelling"`` at once; the work stops
  at its next check (the pipeline checks between steps and between validation schemes) and the
  status becomes ``"cancelled"``. A result that arrives after a cancel request is discarded.
* **Errors become one sentence.** An exception in the work is caught, logged with its traceback
  for the developer, and stored as a message for the page (:func:`user_message`); a page never
  shows a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecpif.errors import EcpifError

log = logging.getLogger("ecpif.app")

#: ``progress(step, fraction)``: what the work is doing and how far it is, in [0, 1].
Progress = Callable[[str, float], None]
#: The work: called with the progress callback and the cancel event; returns the result.
Work = Callable[[Progress, threading.Event], Any]

QUEUED = "queued"
RUNNING = "running"
CANCELLING = "cancelling"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
#: States after which the job's thread has finished.
FINISHED: tuple[str, ...] = (DONE, FAILED, CANCELLED)


def user_message(exc: BaseException, action: str = "running the study") -> str:
    """One sentence for the page: ecpif's own message, or what failed and the exception's text.

    ecpif errors already are one sentence (what, where, what was received, what to do). Anything
    else is a bug or an unexpected input, named by its type so that it can be reported.

    Examples
    --------
    >>> from ecpif.errors import ConfigError
    >>> user_message(ConfigError("Unknown model 'rige'; did you mean 'ridge'?"))
    "Unknown model 'rige'; did you mean 'ridge'?"
    >>> user_message(ZeroDivisionError("division by zero"), "reading the file")
    'Unexpected error while reading the file (ZeroDivisionError: division by zero).'
    """
    if isinstance(exc, EcpifError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"Unexpected error while {action} ({detail})."


@dataclass(frozen=True)
class JobSnapshot:
    """What the page shows about a job, read consistently at one instant."""

    id: str
    name: str
    status: str
    step: str
    fraction: float
    message: str
    elapsed_s: float

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class Job:
    """One piece of work running in a background thread.

    Parameters
    ----------
    work
        ``work(progress, cancel) -> result``.
    name
        Shown on the page (e.g. ``"study"``).
    action
        Completes "Unexpected error while ..." in messages of unexpected exceptions.

    Examples
    --------
    >>> def work(progress, cancel):
    ...     progress("adding", 0.5)
    ...     return 1 + 1
    >>> job = Job(work, name="sum").start()
    >>> job.wait(5)
    True
    >>> job.snapshot().status, job.result
    ('done', 2)
    """

    def __init__(self, work: Work, *, name: str = "job", action: str = "running the study") -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        self.action = action
        self.cancel_event = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._work = work
        self._lock = threading.Lock()
        self._status = QUEUED
        self._step = "waiting to start"
        self._fraction = 0.0
        self._message = ""
        self._started = time.monotonic()
        self._finished: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"ecpif-{name}", daemon=True)

    # --- control --------------------------------------------------------------------------------

    def start(self) -> Job:
        """Start the thread; returns the job."""
        self._started = time.monotonic()
        with self._lock:
            self._status = RUNNING
        self._thread.start()
        return self

    def cancel(self) -> bool:
        """Ask the work to stop; ``True`` if the job was still running."""
        with self._lock:
            if self._status in FINISHED:
                return False
            self.cancel_event.set()
            self._status = CANCELLING
            self._message = "Cancelling: the current step finishes first."
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; ``True`` if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        """Whether the thread still runs (a cancelled job's thread may run a little longer)."""
        return self._thread.is_alive()

    # --- reading --------------------------------------------------------------------------------

    def snapshot(self) -> JobSnapshot:
        """Status, step, fraction and message, read under the lock."""
        with self._lock:
            end = self._finished if self._finished is not None else time.monotonic()
            return JobSnapshot(
                id=self.id,
                name=self.name,
                status=self._status,
                step=self._step,
                fraction=self._fraction,
                message=self._message,
                elapsed_s=end - self._started,
            )

    # --- the thread -----------------------------------------------------------------------------

    def _progress(self, step: str, fraction: float) -> None:
        with self._lock:
            self._step = str(step)
            # Progress never goes backwards on the page, whatever the work reports.
            self._fraction = max(self._fraction, min(1.0, max(0.0, float(fraction))))

    def _run(self) -> None:
        try:
            result = self._work(self._progress, self.cancel_event)
        except BaseException as exc:  # the page must hear of every failure, whatever its type
            with self._lock:
                self._finished = time.monotonic()
                if self.cancel_event.is_set():
                    self._status = CANCELLED
                    self._message = "Cancelled; nothing was changed."
                else:
                    log.error("%s failed", self.name, exc_info=exc)
                    self.error = exc
                    self._status = FAILED
                    self._message = user_message(exc, self.action)
            return
        with self._lock:
            self._finished = time.monotonic()
            if self.cancel_event.is_set():
                self._status = CANCELLED
                self._message = "Cancelled; nothing was changed."
            else:
                self.result = result
                self._status = DONE
                self._fraction = 1.0
                self._step = "done"
                self._message = ""
