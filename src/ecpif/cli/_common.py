"""Argument parsing and table reading shared by the command modules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ecpif.errors import ConfigError, ReadError

if TYPE_CHECKING:
    import pandas as pd


def split_list(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; ``None`` or only commas -> ``None``."""
    if text is None:
        return None
    items = [part.strip() for part in text.split(",") if part.strip()]
    return items or None


def read_table(path: Path, command: str) -> pd.DataFrame:
    """Read an aligned table written by ``ecpif align`` (``.csv`` or ``.parquet``)."""
    import pandas as pd

    if not path.is_file():
        raise ReadError(f"No file at {path}; give the aligned table written by 'ecpif align'.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except (ValueError, OSError) as exc:
        raise ReadError(f"Cannot read {path} as {suffix[1:]}: {exc}.") from None
    raise ReadError(
        f"{path} has the suffix {suffix!r}; 'ecpif {command}' reads '.csv' or '.parquet' tables "
        f"(write them with 'ecpif align')."
    )


def training_features(
    table: pd.DataFrame, features: str | None, defaults: Sequence[str], source: Path
) -> list[str]:
    """The ``--features`` given, else the defaults that are columns of ``table``."""
    chosen = split_list(features) or [f for f in defaults if f in table.columns]
    if not chosen:
        raise ConfigError(
            f"None of the default features {list(defaults)} is a column of '{source}'; "
            f"name the features with --features."
        )
    return chosen
