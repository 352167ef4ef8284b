"""``ecpif app``: the whole workflow in the browser, served on this machine.

One page, seven steps: load the demo or upload a cycler file with its refinement table (what was
read is shown, a missing time zone is asked for); the alignment with its quality report; the
correlation heatmap and feature network, with feature and target choices; models, validation
schemes and ensemble mode, run in the background with live progress and a cancel button; the
leaderboard, ensembles, parity plots, evolution curves with intervals and Rabs; prediction of an
uploaded cycler-only file with the trained model or a saved bundle; downloads of the report, the
predictions and the model bundle.

Start it with ``ecpif app`` (``--host 127.0.0.1 --port 8050 --max-upload-mb 50``) or::

    from ecpif.app import serve
    serve(port=8050)

Framework: Dash, and why
------------------------
Dash (Plotly, MIT licence, actively released) was chosen over Shiny for Python, Panel and NiceGUI:

* **Long jobs with progress and cancel.** The study runs in a worker thread
  (:mod:`ecpif.app.jobs`) that :func:`ecpif.pipeline.run` feeds through its ``progress`` and
  ``cancel`` hooks; the page polls it with ``dcc.Interval``. Dash's own background callbacks would
  need ``diskcache`` + ``multiprocess`` (or Celery + Redis) and would pickle the fitted models
  between processes; a thread keeps the results in memory for the next steps and adds no service.
  The heavy numbers run in joblib worker processes or GIL-free NumPy/scikit-learn code, so the page
  keeps answering.
* **Uploads and downloads** are components (``dcc.Upload``, ``dcc.Download``); the upload limit is
  checked in the browser (a clientside callback, so an oversized file never leaves the page), on
  the server, and by Flask's ``MAX_CONTENT_LENGTH``.
* **Testability**: callbacks are plain Python functions over session state kept outside the
  framework (:mod:`ecpif.app.state`, :mod:`ecpif.app.uploads`, :mod:`ecpif.app.jobs`, tested
  without a browser), and every control has a stable DOM id, so Playwright drives the page in
  Debian's headless Chromium without a framework-specific test harness.
* **Install weight**: Dash needs Flask, Werkzeug and Plotly (Flask/Werkzeug are small; Plotly is
  the interactive plotting ecpif would want anyway), no ASGI stack, no websockets, no Node.
  Panel (Bokeh + Tornado) and NiceGUI (FastAPI + Vue + uvicorn + socket.io) are heavier;
  Shiny's ExtendedTask is a good fit too, but it would need shinywidgets and anywidget for
  interactive Plotly figures.

It sits behind the optional extra ``ecpif[app]``; nothing else in ecpif imports it.

Safety: the server binds to ``127.0.0.1`` unless told otherwise; uploads are limited in size and
stored under sanitised names in a per-session temporary folder; every failure is shown as one
sentence on the page, never a traceback (:func:`ecpif.app.jobs.user_message`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecpif.app.server import AppHandle

__all__ = ["create_app", "make_server", "serve"]


def create_app(max_upload_mb: float = 50.0, **kwargs: Any) -> AppHandle:
    """Build the app (see :func:`ecpif.app.server.create_app`)."""
    from ecpif.app.server import create_app as _create

    return _create(max_upload_mb, **kwargs)


def make_server(handle: AppHandle, host: str = "127.0.0.1", port: int = 8050) -> Any:
    """A threaded local server for the app (see :func:`ecpif.app.server.make_server`)."""
    from ecpif.app.server import make_server as _make

    return _make(handle, host, port)


def serve(
    host: str = "127.0.0.1", port: int = 8050, max_upload_mb: float = 50.0, **kwargs: Any
) -> None:
    """Serve the app until interrupted (see :func:`ecpif.app.server.serve`)."""
    from ecpif.app.server import serve as _serve

    _serve(host, port, max_upload_mb, **kwargs)
