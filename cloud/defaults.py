"""Defaults of ``ferry cloud`` shared by its CLI and server (import-light on purpose)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DATA_DIR = Path("~/.ferry/cloud")
DEFAULT_PORT = 8443
DEFAULT_UPLOAD_IDLE_S = 30 * 86_400.0
"""An open upload with no chunk for this long is expired (``cloud/ingest/expiry.py``)."""
