"""Server-side state of each browser session: uploaded files, runs, the running job, results.

Dash callbacks are stateless; the page holds only a random session id (``dcc.Store``) and every
callback finds its :class:`Session` in the :class:`SessionStore`. Large objects (runs, fitted
models, result frames) therefore never travel to the browser.

Design decisions
----------------
* **One folder per session** under one temporary root, removed when the app stops; uploads and
  written results live there, so nothing the app writes lands in the user's working directory.
* **Bounded**: the store keeps at most ``max_sessions``; the least recently used idle session is
  dropped (with its folder) when a new one arrives. A session whose job runs is never dropped.
* **Unguessable ids**: ``uuid4().hex``, checked against a strict pattern before use as a folder
  name.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecpif.app.jobs import Job
from ecpif.app.uploads import ReadOutcome, Upload
from ecpif.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from ecpif.align import Alignment
    from ecpif.ensemble import TrainedEnsemble
    from ecpif.pipeline import Results, RunSpec
    from ecpif.report import Report
    from ecpif.run import OperandoRun

_HEX32 = frozenset("0123456789abcdef")


def new_session_id() -> str:
    """A fresh random session id."""
    return uuid.uuid4().hex


def valid_session_id(sid: object) -> bool:
    """Whether ``sid`` looks like an id made by :func:`new_session_id`."""
    return isinstance(sid, str) and len(sid) == 32 and set(sid) <= _HEX32


@dataclass
class StudyOutcome:
    """What a finished study left for the page: results, folder, report and figures."""

    results: Results
    folder: Path
    figures: dict[str, list[tuple[str, str]]]
    report: Report
    warnings: list[str] = field(default_factory=list)


@dataclass
class Session:
    """Everything one browser tab has loaded, chosen and computed."""

    id: str
    folder: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: ``"demo"`` or ``"files"`` once data are loaded.
    dataset: str | None = None
    runs: list[OperandoRun] = field(default_factory=list)
    specs: list[RunSpec] = field(default_factory=list)
    uploads: dict[str, Upload] = field(default_factory=dict)
    readouts: dict[str, ReadOutcome] = field(default_factory=dict)
    alignments: dict[str, Alignment] = field(default_factory=dict)
    aligned: pd.DataFrame | None = None
    job: Job | None = None
    outcome: StudyOutcome | None = None
    bundle_model: TrainedEnsemble | None = None
    bundle_name: str = ""
    prediction: pd.DataFrame | None = None
    prediction_name: str = ""
    touched: float = field(default_factory=time.monotonic)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def busy(self) -> bool:
        """Whether a job's thread still runs (also while it is being cancelled)."""
        return self.job is not None and self.job.alive

    def set_runs(self, runs: list[OperandoRun], dataset: str, specs: list[RunSpec]) -> None:
        """Replace the data; alignments, results and predictions of older data are dropped."""
        with self.lock:
            self.runs = list(runs)
            self.dataset = dataset
            self.specs = list(specs)
            self.alignments = {}
            self.aligned = None
            self.outcome = None

    def clear_runs(self) -> None:
        """Forget every loaded run (uploaded files stay until replaced)."""
        self.set_runs([], None, [])  # type: ignore[arg-type]
        self.dataset = None


class SessionStore:
    """All sessions of one app process, each with its folder under one temporary root.

    Examples
    --------
    >>> store = SessionStore(max_sessions=2)
    >>> s = store.get(new_session_id())
    >>> s.folder.is_dir()
    True
    >>> store.close()
    """

    def __init__(self, root: str | Path | None = None, max_sessions: int = 16) -> None:
        if max_sessions < 1:
            raise ConfigError(f"max_sessions must be >= 1; got {max_sessions!r}.")
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="ecpif-app-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, sid: object) -> Session:
        """The session of ``sid``, created on first use."""
        if not valid_session_id(sid):
            raise ConfigError(
                "This page lost its session id; reload the page (uploaded files must be "
                "uploaded again)."
            )
        assert isinstance(sid, str)  # checked by valid_session_id
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                folder = self.root / sid
                folder.mkdir(parents=True, exist_ok=True)
                session = Session(id=sid, folder=folder)
                self._sessions[sid] = session
                self._evict()
            self._sessions.move_to_end(sid)
            session.touched = time.monotonic()
            return session

    def _evict(self) -> None:
        while len(self._sessions) > self.max_sessions:
            victim = next((s for s in self._sessions.values() if not s.busy), None)
            if victim is None:
                return  # every session is busy: keep them all rather than kill a running job
            del self._sessions[victim.id]
            shutil.rmtree(victim.folder, ignore_errors=True)

    def close(self) -> None:
        """Cancel running jobs and remove the folders the store created."""
        with self._lock:
            for session in self._sessions.values():
                if session.job is not None:
                    session.job.cancel()
            self._sessions.clear()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
