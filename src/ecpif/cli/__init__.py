"""The ``ecpif`` command line: a thin typer layer over library calls.

Each family of commands lives in its own module and registers itself on :data:`app`; commands parse
arguments, call the library (:mod:`ecpif.pipeline` and friends), and print. Library errors
(:class:`ecpif.errors.EcpifError`) are shown as one red sentence with exit code 2, not a traceback.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="ecpif",
    help="Electrochemical-to-Crystallographic Parameter Inference Framework.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Electrochemical-to-Crystallographic Parameter Inference Framework."""
    _state["debug"] = debug


# Command modules register on `app` when imported; keep the import list sorted.
from ecpif.cli import align as _align  # noqa: E402, F401
from ecpif.cli import explore as _explore  # noqa: E402, F401
from ecpif.cli import scale as _scale  # noqa: E402, F401
from ecpif.cli import simulate as _simulate  # noqa: E402, F401
from ecpif.cli import study as _study  # noqa: E402, F401
from ecpif.cli import train as _train  # noqa: E402, F401
from ecpif.cli import webapp as _webapp  # noqa: E402, F401


def main() -> None:
    """Entry point of the ``ecpif`` console script."""
    from rich.console import Console

    from ecpif.errors import EcpifError

    try:
        app()
    except EcpifError as exc:
        if _state["debug"]:
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
