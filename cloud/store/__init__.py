"""Stores behind the cloud's ``Store`` port (``cloud/store/port.py``).

The embedded default is ``SqliteStore``: SQLite in WAL mode for metadata and
tabular readings, plus a content-addressed blob directory for binary data.
"""
