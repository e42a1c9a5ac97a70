"""Where the package's data files live, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path


def models_dir() -> Path:
    """`models/` (registry and templates): inside an installed wheel, or beside the package in a checkout."""
    packaged = Path(__file__).resolve().parent / "_models"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "models"
