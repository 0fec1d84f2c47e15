"""Keys for the interop tests, made on first use and kept for the module (RSA is slow to make)."""

from __future__ import annotations

from typing import Any

import pytest

from .peers import Keyring, realistic_claims


@pytest.fixture(scope="module")
def keyring() -> Keyring:
    return Keyring()


@pytest.fixture
def claims() -> dict[str, Any]:
    return realistic_claims()
