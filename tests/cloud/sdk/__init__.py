"""Interop with the official, unmodified Viam Python SDK, run in its own isolated venv."""
