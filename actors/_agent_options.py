"""What the agent is given to run with, and the error it raises for a bad config.

``AgentOptions`` is filled in by the command line (``actors.run_cmd``) and the
simulator (``sim.robot``); kept apart from ``actors.agent``, which runs the
supervision tree, so the agent's inputs are declared in one place. Both names
are re-exported from ``actors.agent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from actors.config import CloudSettings
    from actors.config_plan import AgentPlan
    from actors.fleet.ports import ConfigLink
    from actors.ports import DiskUsage, SyncFile
    from actors.sync.actor import Links
    from actors.sync.fsm import Event, FileState
    from actors.sync.plan import SyncPlan


class InvalidConfig(Exception):
    """The config file does not validate; the message lists every problem."""


@final
@dataclass
class AgentOptions:
    """How the agent is run (from the command line)."""

    config_path: Path
    load_plan: Callable[[str, Path], AgentPlan]
    disk: DiskUsage
    sync_connect: Callable[[SyncPlan], AbstractAsyncContextManager[Links]] | None = None
    """Opens the cloud links for sync; ``None`` runs capture only (tests of capture)."""
    sync_on_point: Callable[[str, SyncFile], None] | None = None
    """A hook at named points of sync (``--debug-stop-at``; the simulator's crash points)."""
    sync_observe: Callable[[SyncFile, FileState, Event, FileState], None] | None = None
    """The simulator's view of every sync state-machine step."""
    api_host: str = "127.0.0.1"
    api_port: int = 8085
    serve_api: bool = True
    config_poll_s: float = 1.0
    aio: bool = True
    """Whether the sync links need the asyncio bridge (grpclib); the simulator's do not."""
    config_link: Callable[[CloudSettings], ConfigLink] | None = None
    """Opens the cloud's config service, for a bootstrap config with config_source 'cloud'."""
    config_cache_dir: Path | None = None
    """Where the last good cloud config is kept; default ``$FERRY_HOME/config-cache``."""
