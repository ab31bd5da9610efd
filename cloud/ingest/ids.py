"""Identifiers for stored data: random for one-shot uploads, derived for resumable ones.

Resumable uploads derive every id from the upload id, so a finish that is
retried (or raced) names the same file and binary items: the ids themselves
cannot introduce duplicates. Randomness comes from an injected ``random.Random``
(``SystemRandom`` in production, seeded in the simulator).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    import random


@final
class IdSource:
    """Makes ids; one per server (or simulated cloud)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def new_id(self) -> str:
        """A fresh 128-bit random id as 32 hex digits."""
        return f"{self._rng.getrandbits(128):032x}"

    @staticmethod
    def derived(*parts: str) -> str:
        """A 128-bit id derived from ``parts`` (32 hex digits); same parts, same id."""
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
        return digest[:32]

    @staticmethod
    def binary_data_id(org_id: str, location_id: str, object_id: str) -> str:
        """Viam's binary data id shape: ``<org>/<location>/<object id>``."""
        return f"{org_id}/{location_id}/{object_id}"
