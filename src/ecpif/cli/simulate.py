"""``ecpif simulate``: run the virtual operando experiment and write its files."""

from __future__ import annotations
