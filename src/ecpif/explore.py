"""Exploration of an aligned table: correlations, mutual information, feature network, selection.

Before any model is trained, a battery scientist wants to see which cycler-derived features follow
which structural parameter, and which features are near-copies of each other (``charge [mA.h]`` and
a state of charge computed from it carry the same information). This module answers both questions
from one aligned table (one row per diffraction pattern, features averaged over the pattern's
window, refined parameters as targets).

* :func:`correlations`: Pearson or Spearman matrix over any numeric columns;
* :func:`mutual_information`: non-linear dependence of each target on each feature
  (:func:`sklearn.feature_selection.mutual_info_regression`, in nats);
* :func:`feature_network`: a :class:`networkx.Graph` whose edges join strongly correlated columns;
* :func:`suggest_features`: a feature set without near-duplicates, with the reason for each drop.

Design decisions
----------------
* Functions take and return plain pandas objects, keyed by the canonical column names, so the
  pipeline, the report and a notebook user all call the same thing.
* Near-duplicate removal is greedy in order of decreasing mutual information with the targets:
  of two features correlated above the threshold, the one that tells more about the targets stays.
  Ranking by mutual information rather than by correlation with the targets keeps a feature whose
  dependence on the structure is strong but not monotonic (e.g. voltage on a two-phase plateau).
* Rows with a missing value in any used column are dropped before mutual information, since the
  estimator accepts no NaN; correlations use pandas' pairwise-complete observations.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> q = rng.uniform(0, 100, 200)
>>> data = pd.DataFrame({"charge [mA.h]": q, "charge copy [mA.h]": q * 1.0,
...                      "voltage [V]": 3.5 + 0.005 * q + rng.normal(0, 0.05, 200),
...                      "c [Å]": 14.18 + 1e-3 * q})
>>> s = suggest_features(data, ["charge [mA.h]", "charge copy [mA.h]", "voltage [V]"], ["c [Å]"])
>>> len(s.kept), len(s.dropped)
(2, 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ecpif import schema
from ecpif.errors import ConfigError, DataError, did_you_mean

if TYPE_CHECKING:
    import networkx as nx

CORRELATION_METHODS: tuple[str, ...] = ("pearson", "spearman")
# Resolution, relative to the best score, at which mutual-information scores count as equal.
_MI_STEP = 0.05

#: Value of the ``kind`` node attribute of :func:`feature_network` graphs.
FEATURE = "feature"
TARGET = "target"


def _check_columns(data: pd.DataFrame, columns: Sequence[str], what: str) -> list[str]:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"The {what} must be a pandas DataFrame; got {type(data).__name__}.")
    columns = list(columns)
    if not columns:
        raise ConfigError(f"No {what} columns were given; name at least one column of the data.")
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise ConfigError(f"Column {dup!r} is listed twice among the {what} columns; list it once.")
    for col in columns:
        if col not in data.columns:
            raise DataError(
                f"Column {col!r} ({what}) is not in the data, whose columns are "
                f"{list(map(str, data.columns))}.{did_you_mean(str(col), map(str, data.columns))}"
            )
        if not pd.api.types.is_numeric_dtype(data[col]) or pd.api.types.is_bool_dtype(data[col]):
            raise DataError(
                f"Column {col!r} ({what}) holds {data[col].dtype} values, not numbers; leave it "
                f"out of the {what} columns or convert it to numbers."
            )
    return columns


def _check_method(method: str) -> str:
    if method not in CORRELATION_METHODS:
        raise ConfigError(
            f"The correlation method must be one of {list(CORRELATION_METHODS)}; got {method!r}."
            f"{did_you_mean(str(method), CORRELATION_METHODS)}"
        )
    return method


def correlations(
    data: pd.DataFrame, columns: Sequence[str] | None = None, method: str = "pearson"
) -> pd.DataFrame:
    """Correlation matrix of numeric columns.

    Parameters
    ----------
    data
        Aligned table (one row per pattern), canonical column names.
    columns
        Columns to correlate, in the order wanted in the matrix; default: every numeric column.
    method
        ``"pearson"`` (linear) or ``"spearman"`` (rank, any monotonic relation).

    Returns
    -------
    pandas.DataFrame
        Square, symmetric, index and columns = ``columns``; values in [-1, 1], NaN where a column
        is constant.

    Examples
    --------
    >>> df = pd.DataFrame({"x [-]": [1.0, 2, 3, 4], "y [-]": [1.0, 4, 9, 16]})
    >>> float(correlations(df, method="spearman").loc["x [-]", "y [-]"])
    1.0
    """
    _check_method(method)
    if columns is None:
        columns = [
            c
            for c in data.columns
            if pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])
        ]
    columns = _check_columns(data, columns, "correlated")
    if len(data) < 3:
        raise DataError(
            f"Correlations need at least 3 rows; the data has {len(data)}. Align more patterns."
        )
    frame = data[columns].astype(float)
    return frame.corr(method=method)  # type: ignore[arg-type]


def mutual_information(
    data: pd.DataFrame,
    features: Sequence[str],
    targets: Sequence[str],
    random_state: int = 0,
    n_neighbors: int = 3,
) -> pd.DataFrame:
    """Mutual information (nats) between each feature and each target.

    Uses the k-nearest-neighbour estimator of
    :func:`sklearn.feature_selection.mutual_info_regression` on the rows where no used column is
    missing.

    Parameters
    ----------
    data
        Aligned table, canonical column names.
    features, targets
        Column names (targets may be short parameter names, ``"a"`` -> ``"a [Å]"``); a column
        may not be both.
    random_state
        Seed of the tiny noise the estimator adds to break ties.
    n_neighbors
        Neighbours of the estimator (3 is sklearn's default).

    Returns
    -------
    pandas.DataFrame
        Index = features, columns = targets, values >= 0 (nats).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(size=300)
    >>> df = pd.DataFrame({"x [-]": x, "noise [-]": rng.uniform(size=300), "y [-]": x**2})
    >>> mi = mutual_information(df, ["x [-]", "noise [-]"], ["y [-]"])
    >>> bool(mi.loc["x [-]", "y [-]"] > mi.loc["noise [-]", "y [-]"])
    True
    """
    from sklearn.feature_selection import mutual_info_regression

    features = _check_columns(data, features, "feature")
    targets = _check_columns(data, [schema.parameter_column(t) for t in targets], "target")
    both = sorted(set(features) & set(targets))
    if both:
        raise ConfigError(
            f"Column {both[0]!r} is both a feature and a target; a target cannot explain itself, "
            f"remove it from the features."
        )
    rows = data[features + targets].astype(float).dropna()
    if len(rows) <= n_neighbors:
        raise DataError(
            f"Mutual information needs more than {n_neighbors} complete rows (no NaN in the "
            f"features and targets); the data has {len(rows)} of {len(data)}."
        )
    x = rows[features].to_numpy()
    out = pd.DataFrame(index=pd.Index(features), columns=pd.Index(targets), dtype=float)
    for target in targets:
        out[target] = mutual_info_regression(
            x, rows[target].to_numpy(), n_neighbors=n_neighbors, random_state=random_state
        )
    return out


def feature_network(
    corr: pd.DataFrame, threshold: float = 0.8, targets: Sequence[str] = ()
) -> nx.Graph:
    """Graph of strongly correlated columns.

    Parameters
    ----------
    corr
        Square correlation matrix (e.g. from :func:`correlations`).
    threshold
        An edge joins two columns when ``|r| > threshold``; in [0, 1).
    targets
        Columns of ``corr`` that are targets (node attribute ``kind="target"``); every other
        column is a feature (``kind="feature"``).

    Returns
    -------
    networkx.Graph
        One node per column (attribute ``kind``), edges with attributes ``weight`` = ``|r|`` and
        ``r`` (signed). Isolated columns stay as nodes.

    Examples
    --------
    >>> c = pd.DataFrame([[1, 0.9, 0.1], [0.9, 1, 0.2], [0.1, 0.2, 1]],
    ...                  index=list("xyz"), columns=list("xyz"))
    >>> g = feature_network(c, 0.8, targets=["z"])
    >>> sorted(g.edges()), g.nodes["z"]["kind"]
    ([('x', 'y')], 'target')
    """
    import networkx as nx

    if not isinstance(corr, pd.DataFrame) or list(corr.index) != list(corr.columns):
        raise DataError(
            "feature_network needs a square correlation DataFrame whose index equals its columns; "
            "pass the output of ecpif.explore.correlations."
        )
    if not 0.0 <= threshold < 1.0:
        raise ConfigError(f"The network threshold must be in [0, 1); got {threshold!r}.")
    unknown = [t for t in targets if t not in corr.columns]
    if unknown:
        raise DataError(
            f"Target {unknown[0]!r} is not a column of the correlation matrix, whose columns are "
            f"{list(corr.columns)}.{did_you_mean(str(unknown[0]), map(str, corr.columns))}"
        )
    # The threshold is kept on the graph so that figures can state it.
    graph = nx.Graph(threshold=float(threshold))
    target_set = set(targets)
    for col in corr.columns:
        graph.add_node(col, kind=TARGET if col in target_set else FEATURE)
    values = corr.to_numpy(dtype=float)
    names = list(corr.columns)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            r = values[i, j]
            if np.isfinite(r) and abs(r) > threshold:
                graph.add_edge(names[i], names[j], weight=float(abs(r)), r=float(r))
    return graph


@dataclass(frozen=True)
class DroppedFeature:
    """A feature left out of a :class:`Suggestion`, and why.

    ``partner`` is the kept feature it duplicates and ``r`` their correlation (both ``None`` when
    the feature was dropped for being constant).
    """

    feature: str
    reason: str
    partner: str | None = None
    r: float | None = None


@dataclass(frozen=True)
class Suggestion:
    """A suggested feature set without near-duplicates.

    Attributes
    ----------
    kept
        Features to keep, in the order they were given.
    dropped
        Features left out, each with its reason.
    threshold
        ``|r|`` above which two features count as near-duplicates.
    method
        Correlation used (``"pearson"`` or ``"spearman"``).
    scores
        Mean mutual information (nats) of each feature with the targets, the ranking used.
    """

    kept: tuple[str, ...]
    dropped: tuple[DroppedFeature, ...]
    threshold: float
    method: str
    scores: Mapping[str, float] = field(default_factory=dict)

    @property
    def reasons(self) -> dict[str, str]:
        """``{dropped feature: reason}``."""
        return {d.feature: d.reason for d in self.dropped}

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: ``feature``, ``status`` (kept/dropped), ``mutual information``,
        ``reason``; kept features first."""
        rows = [
            {"feature": f, "status": "kept", "mutual information": self.scores.get(f), "reason": ""}
            for f in self.kept
        ]
        rows += [
            {
                "feature": d.feature,
                "status": "dropped",
                "mutual information": self.scores.get(d.feature),
                "reason": d.reason,
            }
            for d in self.dropped
        ]
        return pd.DataFrame(rows, columns=["feature", "status", "mutual information", "reason"])

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly dictionary."""
        return {
            "kept": list(self.kept),
            "dropped": [
                {"feature": d.feature, "reason": d.reason, "partner": d.partner, "r": d.r}
                for d in self.dropped
            ],
            "threshold": self.threshold,
            "method": self.method,
            "mutual information": {k: float(v) for k, v in self.scores.items()},
        }


def suggest_features(
    data: pd.DataFrame,
    features: Sequence[str],
    targets: Sequence[str],
    threshold: float = 0.95,
    method: str = "pearson",
    random_state: int = 0,
) -> Suggestion:
    """Suggest a feature set that drops near-duplicates, keeping the more informative of each pair.

    Features are ranked by their mean mutual information with the targets, on steps of 5% of the
    best score (features on the same step keep the order of ``features``: the estimator's noise
    should not pick between twins); walking down the ranking, a feature is dropped when
    ``|r| > threshold`` with a feature already kept. Constant features are dropped too.

    Parameters
    ----------
    data
        Aligned table, canonical column names.
    features, targets
        Column names (targets may be short parameter names).
    threshold
        ``|r|`` above which two features are near-duplicates; in (0, 1].
    method
        ``"pearson"`` or ``"spearman"``.
    random_state
        Seed of :func:`mutual_information`.

    Returns
    -------
    Suggestion

    Examples
    --------
    >>> x = np.linspace(0, 1, 50)
    >>> df = pd.DataFrame({"q [mA.h]": x, "q2 [mA.h]": 2 * x, "t [s]": np.sin(9 * x),
    ...                    "y [-]": x})
    >>> suggest_features(df, ["q [mA.h]", "q2 [mA.h]", "t [s]"], ["y [-]"]).dropped[0].partner
    'q [mA.h]'
    """
    _check_method(method)
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"The duplicate threshold must be in (0, 1]; got {threshold!r}.")
    features = _check_columns(data, features, "feature")
    mi = mutual_information(data, features, targets, random_state=random_state)
    scores = dict(zip(features, map(float, mi.mean(axis=1).to_numpy()), strict=True))
    corr_frame = correlations(data, features, method=method)
    position = {f: i for i, f in enumerate(features)}
    corr = corr_frame.to_numpy(dtype=float)
    constant = {f for f in features if data[f].dropna().nunique() <= 1}
    # Near-duplicates carry the same information, so their estimated MI differs by estimator
    # noise only (a few %): scores are compared on steps of 5% of the largest one, and features
    # on the same step keep the caller's order (stable sort), so that e.g. 'charge [mA.h]' is not
    # dropped for a twin that scored 2% higher by chance.
    top = max(scores.values()) or 1.0
    level = {f: round(scores[f] / top / _MI_STEP) for f in features}
    ranking = sorted(features, key=lambda f: -level[f])
    kept: list[str] = []
    dropped: list[DroppedFeature] = []
    symbol = "ρ" if method == "spearman" else "r"
    for feat in ranking:
        if feat in constant:
            dropped.append(
                DroppedFeature(
                    feat, "constant over the data (zero variance): carries no information"
                )
            )
            continue
        partners = [(abs(corr[position[feat], position[k]]), k) for k in kept]
        partners = [(r, k) for r, k in partners if np.isfinite(r) and r > threshold]
        if not partners:
            kept.append(feat)
            continue
        r_abs, partner = max(partners, key=lambda p: p[0])
        if level[partner] > level[feat]:
            relation = (
                f"which has higher mutual information with the targets "
                f"({scores[partner]:.3g} vs {scores[feat]:.3g} nats)"
            )
        else:
            relation = (
                "which has about the same mutual information with the targets (within 5%) and "
                "comes first in the feature list"
            )
        dropped.append(
            DroppedFeature(
                feat,
                f"|{symbol}|={r_abs:.2f} with {partner!r}, {relation}",
                partner,
                float(corr[position[feat], position[partner]]),
            )
        )
    keep_set = set(kept)
    return Suggestion(
        kept=tuple(f for f in features if f in keep_set),
        dropped=tuple(dropped),
        threshold=float(threshold),
        method=method,
        scores=scores,
    )
