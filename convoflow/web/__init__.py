"""The browser page served at `/`: static HTML, CSS and one JavaScript module, no build step."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
