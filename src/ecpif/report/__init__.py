"""Figures and the self-contained HTML report of an ecpif study.

* :mod:`ecpif.report.figures`: one function per publication figure (matplotlib), and
  :func:`~ecpif.report.figures.save_figure` to write PNG + SVG;
* :mod:`ecpif.report.html`: :class:`ReportContent` (what to show, filled by the pipeline) and
  :class:`Report` (``.html()``, ``.write_html(path)``, ``.save_figures(folder)``).

Nothing else in the library imports this package: the report only reads results.

Examples
--------
>>> from ecpif.report import Report, ReportContent
>>> html = Report(ReportContent(title="empty")).html()
>>> '<section id="leaderboard">' in html
True
"""

from __future__ import annotations

from ecpif.report.html import (
    NOT_COMPUTED,
    SECTION_IDS,
    SECTIONS,
    Report,
    ReportContent,
    hash_files,
    package_versions,
    sha256_file,
)

__all__ = [
    "NOT_COMPUTED",
    "SECTIONS",
    "SECTION_IDS",
    "Report",
    "ReportContent",
    "hash_files",
    "package_versions",
    "sha256_file",
]
