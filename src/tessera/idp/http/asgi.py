"""ASGI entry point for ``uvicorn --factory`` and multi-worker serving: settings from the
environment (``TESSERA_*``), one provider per worker process.

>>> callable(app_factory)
True
"""

from __future__ import annotations

from fastapi import FastAPI

from ..config import Settings
from .app import create_app


def app_factory() -> FastAPI:
    """A new app from the environment's settings."""
    return create_app(Settings())
