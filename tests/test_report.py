"""The HTML report: sections, graceful gaps, self-containment, escaping, atomic writing.

:func:`build_demo_content` fills a :class:`ReportContent` the way the pipeline does, from the
bundled demo data through the real modules (alignment, exploration, a small zoo on the three
schemes with ensembles, predictions with intervals, Rabs); the browser test reuses it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecpif import schema
from ecpif.errors import ConfigError
from ecpif.report import NOT_COMPUTED, SECTION_IDS, Report, ReportContent, hash_files
from ecpif.report import figures as figs
from ecpif.report.html import package_versions, sha256_file

EVIL = "<script>alert(1)</script>"
EVIL_FILE = 'runs/<img src=x onerror="alert(2)">.csv'
TARGETS = (schema.A.column, schema.LI_OCCUPANCY.column)


def build_demo_content(evil: bool = False) -> ReportContent:
    """A full report's content from the demo dataset (two targets keep it quick)."""
    from ecpif import align, analysis, datasets, ensemble, explore, predict, validate

    runs = datasets.load_experiment(datasets.nca_demo_path())
    rate_of = {r.run_id: r.metadata.c_rate for r in runs}
    alignments = [align.align_run(r) for r in runs if r.has_patterns]
    table = pd.concat([a.frame for a in alignments], ignore_index=True)
    coverage = pd.concat([a.report for a in alignments], ignore_index=True)
    coverage[schema.C_RATE_LABEL] = coverage[schema.RUN_ID].map(rate_of)
    # One window cut short, as a misaligned clock would leave it: the table must say why.
    coverage.loc[3, ["coverage [-]", "status", "reason"]] = [0.4, "dropped", "a test gap (40%)"]
    features = [schema.CHARGE, schema.VOLTAGE, "state of charge [-]", "step time [s]"]
    features.append(schema.C_RATE_LABEL)
    targets = list(TARGETS)
    pearson = explore.correlations(table, features + targets)
    suggestion = explore.suggest_features(table, features, targets)
    boards, oof, details, results = [], [], [], {}
    context = table[[schema.C_RATE_LABEL, schema.TIME, "state of charge [-]"]]
    for scheme in validate.SCHEMES:
        res = validate.evaluate_zoo(
            table, suggestion.kept, targets, models=["ridge", "knn"], scheme=scheme,
            n_splits=3, top_k=2, n_jobs=1,
        )  # fmt: skip
        results[scheme] = res
        boards.append(res.leaderboard)
        pred = res.predictions_frame()
        pred[validate.SCHEME] = scheme
        oof.append(pred.join(context, on="row"))
        detail = res.ensemble_details.copy()
        detail.insert(0, validate.SCHEME, scheme)
        details.append(detail)
    model = ensemble.fit_ensemble(table, results["loro"], kind="best_single")
    echem, trajectories, truth, by_rate = [], [], [], {}
    for run in runs:
        rate = run.metadata.c_rate
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", predict.ApplicabilityWarning)  # 2C extrapolates
            traj = predict.predict_run(model, run)
        by_rate[rate] = traj
        true = run.truth.assign(**{schema.CHARGE: run.echem[schema.CHARGE].to_numpy()})
        for frame, into in ((run.echem, echem), (traj, trajectories), (true, truth)):
            into.append(frame.assign(**{schema.C_RATE_LABEL: rate}))
    rabs = analysis.compare_rates(by_rate, targets)
    summary = pd.DataFrame(
        {
            schema.RUN_ID: [r.run_id for r in runs],
            schema.C_RATE_LABEL: [r.metadata.c_rate for r in runs],
            "patterns": [len(r.patterns) for r in runs],
        }
    )
    files = sorted(datasets.nca_demo_path().glob("*_refinement.csv"))
    hashes = hash_files(files)
    notes = {}
    if evil:
        summary[EVIL] = 1.0
        hashes[EVIL_FILE] = "0" * 64
        notes = {"data": f"Note with {EVIL}"}
    return ReportContent(
        title="NCA demo" + (f" {EVIL}" if evil else ""),
        description="Virtual operando experiment: PyBaMM SPMe, NCA_Kim2011, four C-rates.",
        runs=summary,
        alignment=coverage,
        pearson=pearson,
        spearman=explore.correlations(table, features + targets, method="spearman"),
        mutual_information=explore.mutual_information(table, features, targets),
        network=explore.feature_network(pearson, 0.8, targets),
        suggestion=suggestion,
        leaderboard=pd.concat(boards, ignore_index=True),
        ensembles=pd.concat(details, ignore_index=True),
        oof_predictions=pd.concat(oof, ignore_index=True),
        echem=pd.concat(echem, ignore_index=True),
        refined=table,
        trajectories=pd.concat(trajectories, ignore_index=True),
        truth=pd.concat(truth, ignore_index=True),
        reconstruction_rate=2.0,
        importance=pd.DataFrame(
            {
                "feature": list(suggestion.kept),
                "importance mean": np.linspace(0.6, 0.05, len(suggestion.kept)),
                "importance std": 0.02,
            }
        ),
        truth_scores=pd.DataFrame(
            {
                schema.RUN_ID: [r.run_id for r in runs],
                "RMSE a [Å]": [
                    float(
                        np.sqrt(
                            np.mean(
                                (by_rate[r.metadata.c_rate][TARGETS[0]] - r.truth[TARGETS[0]]) ** 2
                            )
                        )
                    )
                    for r in runs
                ],
            }
        ),
        rabs=rabs,
        timings={"align": 0.1, "zoo": 2.0},
        config={"models": ["ridge", "knn"], "targets": targets, "schemes": list(validate.SCHEMES)},
        seed=0,
        input_files=hashes,
        notes=notes,
    )


def sections(html: str) -> dict[str, str]:
    """``{section id: its inner HTML}``; sections do not nest."""
    found = re.findall(r'<section id="([^"]+)">(.*?)</section>', html, flags=re.S)
    return dict(found)


@pytest.fixture(scope="module")
def full() -> Report:
    report = Report(build_demo_content(evil=True))
    report.html()
    return report


# --- structure --------------------------------------------------------------------------------


def test_empty_report_has_every_section_saying_not_computed() -> None:
    html = Report(ReportContent()).html()
    found = sections(html)
    assert list(found) == list(SECTION_IDS)
    for sid, body in found.items():
        assert re.search(r"<h2>[^<]+</h2>", body), sid
        if sid != "provenance":
            assert NOT_COMPUTED in body, sid
    # Provenance always records the rendering: package versions, and that nothing else was given.
    assert "scikit-learn" in found["provenance"]
    assert "No configuration, seed or input files were recorded" in found["provenance"]


def test_full_report_fills_every_section(full: Report) -> None:
    html = full.html()
    found = sections(html)
    assert list(found) == list(SECTION_IDS)
    assert full.warnings == []
    for sid, body in found.items():
        assert NOT_COMPUTED not in body, sid
    images = {sid: body.count("<img ") for sid, body in found.items()}
    assert images == {
        "data": 1,
        "exploration": 3,
        "leaderboard": 1,
        "ensembles": 0,
        "validation": 2 * len(TARGETS),  # parity and residuals per target
        "predictions": 3,
        "rabs": 2,
        "provenance": 0,
    }
    assert {k: len(v) for k, v in full.figures.items()} == images


def test_sections_show_what_the_data_say(full: Report) -> None:
    found = sections(full.html())
    # Data: the dropped window with its reason.
    assert "Windows not kept as measured, and why" in found["data"]
    assert "a test gap (40%)" in found["data"]
    # Exploration: a dropped near-duplicate with its reason.
    assert (
        "dropped" in found["exploration"]
        and "mutual information with the targets" in (found["exploration"])
    )
    # Validation: the three schemes side by side, honest one first in the ranking.
    for label in ("RMSE (shuffled k-fold)", "RMSE (grouped by run)", "RMSE (leave-one-rate-out)"):
        assert label in found["validation"]
    assert "Ranked by RMSE under leave-one-rate-out validation" in found["leaderboard"]
    # Ensembles: members and weights from the inner folds.
    assert "Members and weights" in found["ensembles"] and "stacking" in found["ensembles"]
    assert "Trajectories against the ground truth" in found["predictions"]
    # Provenance: seed, config, timings, hashes of the real input files.
    assert "Timings" in found["provenance"]
    path = sorted(Path(p) for p in full.content.input_files or {} if p.endswith(".csv"))[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() in found["provenance"]
    assert "&#34;schemes&#34;" in found["provenance"] or '"schemes"' in found["provenance"]


def test_long_tables_fold_away_without_script(full: Report) -> None:
    found = sections(full.html())
    assert "<details>" in found["ensembles"]  # dozens of rows: folded
    assert "<details>" not in found["data"]  # a handful: shown


# --- self-contained and safe ------------------------------------------------------------------


def test_report_is_self_contained(full: Report) -> None:
    html = full.html()
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sources and all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    for src in sources:
        svg = base64.b64decode(src.split(",", 1)[1])
        root = ET.fromstring(svg)
        assert not [el for el in root.iter() if el.tag.endswith("script")]
        # Namespaces and metadata name URLs, but nothing is loaded from one: every reference is
        # internal (#id) or inline (data:).
        assert not re.findall(rb'href="(?!#|data:)', svg)


def test_user_strings_are_escaped(full: Report) -> None:
    html = full.html()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "onerror=&#34;alert(2)&#34;" in html  # the file name, shown as text
    assert "<title>NCA demo &lt;script&gt;" in html


def test_script_in_column_names_of_every_table_is_escaped() -> None:
    frame = pd.DataFrame({EVIL: [1.0, 2.0, 3.0, 4.0], "y [-]": [2.0, 1.0, 4.0, 3.0]})
    corr = frame.corr()
    board = pd.DataFrame(
        {"target": [EVIL], "model": ["ridge"], "kind": ["model"], "scheme": ["loro"], "RMSE": [0.1]}
    )
    content = ReportContent(
        runs=frame,
        mutual_information=corr,
        leaderboard=board,
        rabs=pd.DataFrame({schema.C_RATE_LABEL: [1.0], "segment": [EVIL], "Rabs a [Å/h]": [0.1]}),
        config={EVIL: EVIL},
    )
    html = Report(content).html()
    assert EVIL not in html
    assert html.count("&lt;script&gt;") >= 5


def test_png_figures_on_request(tmp_path: Path) -> None:
    corr = pd.DataFrame(
        [[1.0, 0.5], [0.5, 1.0]], index=["p [-]", "q [-]"], columns=["p [-]", "q [-]"]
    )
    html = Report(ReportContent(pearson=corr), figure_format="png").html()
    (src,) = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert base64.b64decode(src)[:8] == b"\x89PNG\r\n\x1a\n"


# --- robustness -------------------------------------------------------------------------------


def test_unusable_inputs_become_visible_warnings() -> None:
    board = pd.DataFrame({"target": ["a [Å]"], "model": ["ridge"], "scheme": ["loro"]})
    echem = pd.DataFrame({schema.VOLTAGE: [3.0, 3.1]})  # no time column
    report = Report(ReportContent(leaderboard=board, echem=echem))
    found = sections(report.html())
    assert "The leaderboard lacks the column(s) [&#39;RMSE&#39;]" in found["leaderboard"]
    assert "could not be drawn" in found["predictions"]
    assert "cycler table lacks the column &#39;time [s]&#39;" in found["predictions"]
    assert len(report.warnings) == 2
    assert NOT_COMPUTED in found["rabs"]


def test_content_errors_name_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"section id 'results', which does not exist"):
        ReportContent(notes={"results": "x"})
    board = pd.DataFrame({"target": ["a"], "model": ["m"], "scheme": ["loro"], "RMSE": [1.0]})
    with pytest.raises(ConfigError, match=r"primary_scheme is 'grouped'.*\['loro'\]"):
        ReportContent(leaderboard=board, primary_scheme="grouped")
    with pytest.raises(ConfigError, match=r"figure_format must be 'svg' or 'png'; got 'gif'"):
        Report(ReportContent(), figure_format="gif")
    with pytest.raises(ConfigError, match=r"Report needs a ReportContent; got dict"):
        Report({})  # type: ignore[arg-type]


def test_extra_figures_and_notes_are_shown() -> None:
    fig = figs.importance_figure(pd.DataFrame({"feature": ["q [mA.h]"], "importance mean": [1.0]}))
    content = ReportContent(figures={"rabs": {"My own figure": fig}}, notes={"rabs": "Hand-made."})
    report = Report(content)
    body = sections(report.html())["rabs"]
    assert "My own figure" in body and "Hand-made." in body and NOT_COMPUTED not in body
    assert report.figures["rabs"] == {"My own figure": fig}


# --- files ------------------------------------------------------------------------------------


def test_write_html_is_atomic_and_overwrites(tmp_path: Path) -> None:
    report = Report(ReportContent(title="first"))
    target = tmp_path / "out" / "report.html"
    assert report.write_html(target) == target
    assert target.read_text(encoding="utf-8") == report.html()
    Report(ReportContent(title="second")).write_html(target)
    assert "<title>second</title>" in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_save_figures_writes_png_and_svg(full: Report, tmp_path: Path) -> None:
    # Only the exploration figures, to stay quick: same code path as every section.
    subset = Report(
        ReportContent(pearson=full.content.pearson, network=full.content.network)
    ).save_figures(tmp_path)
    names = sorted(p.name for p in subset)
    assert names == [
        "exploration_feature_network.png",
        "exploration_feature_network.svg",
        "exploration_pearson_correlation_of_features_and_targets.png",
        "exploration_pearson_correlation_of_features_and_targets.svg",
    ]
    assert all(p.stat().st_size > 1000 for p in subset)


def test_save_figures_keeps_captions_that_differ_only_in_symbols(tmp_path: Path) -> None:
    fig = figs.importance_figure(pd.DataFrame({"feature": ["q [mA.h]"], "importance mean": [1.0]}))
    content = ReportContent(figures={"rabs": {"a [Å]": fig, "a (Å)": fig}})
    paths = Report(content).save_figures(tmp_path)
    assert sorted(p.name for p in paths) == [
        "rabs_a.png",
        "rabs_a.svg",
        "rabs_a_2.png",
        "rabs_a_2.svg",
    ]


def test_provenance_helpers(tmp_path: Path) -> None:
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    # The FIPS 180-2 test vector for "abc".
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(path) == expected == hashlib.sha256(b"abc").hexdigest()
    assert hash_files([path]) == {str(path): expected}
    versions = package_versions(["numpy", "surely-not-installed-pkg"])
    assert versions["numpy"] == np.__version__
    assert versions["surely-not-installed-pkg"] == "not installed"
    assert "python" in versions


# --- from the pipeline ------------------------------------------------------------------------


def test_content_from_pipeline_results_fills_every_section() -> None:
    """The lead's pipeline output maps onto the report without glue code."""
    from ecpif import pipeline

    config = pipeline.StudyConfig(models=("ridge", "knn"), targets=("a",), top_k=2, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = pipeline.run(config)
    content = ReportContent.from_results(results)
    assert content.reconstruction_rate == 2.0  # the cycler-only run
    assert content.primary_scheme == config.final_scheme
    assert content.rabs is not None and set(content.rabs["source"]) == {"predicted", "truth"}
    report = Report(content)
    found = sections(report.html())
    assert report.warnings == []
    for sid, body in found.items():
        assert NOT_COMPUTED not in body, sid
    assert "Applicability domain" in found["predictions"]
    assert "Prediction intervals: coverage of held-out rows" in found["validation"]
    assert "nca-2C" in found["data"] and "machine" in found["provenance"]
    assert len(report.figures["validation"]) == 2  # parity and residuals of a
