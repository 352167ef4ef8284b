"""What the real-browser tests share: Debian's Chromium, its flags, and when to skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, sandbox off (root in CI), and no background traffic: this machine reaches no network.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Skip where Chromium is absent, except in CI (ECPIF_REQUIRE_BROWSER=1), where absence must fail.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("ECPIF_REQUIRE_BROWSER"),
    reason="Debian chromium is not installed at /usr/bin/chromium "
    "(apt-get install -y chromium chromium-driver)",
)
