from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.codec.protoc_classes import ProtocClasses, generate

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="session")
def protoc(tmp_path_factory: pytest.TempPathFactory) -> ProtocClasses:
    """protoc-generated classes for the Viam protos, built once per session."""
    out: Path = tmp_path_factory.mktemp("protoc_out")
    return generate(out)
