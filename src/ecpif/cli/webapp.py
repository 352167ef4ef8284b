"""``ecpif app``: start the local web app (needs the optional extra ``ecpif[app]``).

The module is not called ``app.py``: importing ``ecpif.cli.app`` would replace the typer object
``ecpif.cli.app`` with the module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ecpif.cli import app
from ecpif.errors import ConfigError


@app.command("app")
def web_app(
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind. The default serves this machine only; another address "
            "exposes your data to the network."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8050,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest accepted upload per file, in MB.")
    ] = 50.0,
) -> None:
    """Run the whole workflow in the browser: upload, align, explore, train, predict, download.

    Binds to 127.0.0.1 by default; open the printed address in a browser.

    Example: ecpif app --port 8050 --max-upload-mb 100
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0-65535; got {port}.")
    if not max_upload_mb > 0:
        raise ConfigError(f"--max-upload-mb must be > 0; got {max_upload_mb}.")
    from ecpif.app import serve

    serve(host=host, port=port, max_upload_mb=max_upload_mb, announce=typer.echo)
