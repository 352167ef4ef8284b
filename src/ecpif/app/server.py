"""Build the Dash app and serve it on a local address.

:func:`create_app` returns an :class:`AppHandle` (the Dash app, its Flask server and the session
store); :func:`make_server` wraps it in a threaded WSGI server bound to ``127.0.0.1`` by default
(port ``0`` picks a free one, which the tests use); :func:`serve` runs it until Ctrl+C.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecpif.errors import ConfigError, require

log = logging.getLogger("ecpif.app")

ASSETS = Path(__file__).parent / "assets"


@dataclass
class AppHandle:
    """The app with what its tests and its server need."""

    dash: Any
    store: Any
    max_upload_bytes: int

    @property
    def server(self) -> Any:
        """The Flask (WSGI) application."""
        return self.dash.server


def _on_error(exc: Exception) -> None:
    """App-wide net: an unexpected exception in a callback becomes one sentence on the page."""
    from dash import set_props

    from ecpif.app.jobs import user_message
    from ecpif.errors import EcpifError

    if isinstance(exc, EcpifError):
        log.warning("%s", exc)
    else:
        log.error("callback failed", exc_info=exc)
    set_props("page-error", {"children": user_message(exc, "updating the page"), "hidden": False})


def create_app(max_upload_mb: float = 50.0, *, root: str | Path | None = None) -> AppHandle:
    """Build the web app.

    Parameters
    ----------
    max_upload_mb
        Largest accepted upload, in MB (10^6 bytes); enforced in the page, by the upload handler
        and by the web server's request-size cap.
    root
        Folder for session data (default: a new temporary folder, removed at exit).

    Examples
    --------
    >>> handle = create_app(max_upload_mb=5)  # doctest: +SKIP
    >>> handle.server.config["MAX_CONTENT_LENGTH"] > 5_000_000  # doctest: +SKIP
    True
    """
    require("dash", "app", "The web app")
    from dash import Dash

    from ecpif.app.callbacks import register
    from ecpif.app.layout import make_layout
    from ecpif.app.state import SessionStore
    from ecpif.app.uploads import limit_bytes
    from ecpif.zoo import available_models

    max_bytes = limit_bytes(max_upload_mb)
    store = SessionStore(root)
    atexit.register(store.close)
    models = list(available_models())
    app = Dash(
        __name__,
        title="ecpif",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=False,
        on_error=_on_error,
        update_title=None,  # type: ignore[arg-type]  # keep the tab title steady while polling
    )
    # base64 inflates a file by 4/3; leave room for the rest of the callback's JSON.
    app.server.config["MAX_CONTENT_LENGTH"] = max_bytes * 4 // 3 + 1_000_000
    app.layout = lambda: make_layout(models, max_bytes)
    register(app, store, max_bytes, models)
    return AppHandle(dash=app, store=store, max_upload_bytes=max_bytes)


def make_server(handle: AppHandle, host: str = "127.0.0.1", port: int = 8050) -> Any:
    """A threaded WSGI server for ``handle`` (``port=0``: any free port, see ``.server_port``)."""
    from werkzeug.serving import make_server as _make

    if not 0 <= int(port) <= 65535:
        raise ConfigError(f"The port must be in 0-65535; got {port!r}.")
    # Polling every 0.6 s would flood the terminal with one log line per request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return _make(host, int(port), handle.server, threaded=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(
    host: str = "127.0.0.1",
    port: int = 8050,
    max_upload_mb: float = 50.0,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the app until interrupted (what ``ecpif app`` runs).

    ``announce`` receives one line with the address once the port is bound (default: logged).
    """
    handle = create_app(max_upload_mb)
    server = make_server(handle, host, port)
    line = f"ecpif app: open http://{host}:{server.server_port}/ in a browser (Ctrl+C to stop)."
    (announce or log.warning)(line)
    if threading.current_thread() is threading.main_thread():
        # `kill` (SIGTERM) stops the app like Ctrl+C, so the session folders are removed too.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        handle.store.close()
