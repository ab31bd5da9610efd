"""``ferry run``: the agent in the foreground, until SIGINT/SIGTERM; SIGHUP reloads."""

from __future__ import annotations

import argparse
import functools
import logging
import random
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from actors.adapters.malloc_tuning import tune_malloc

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.config import CloudSettings
    from actors.fleet.ports import ConfigLink
    from actors.ports import SyncFile

LOGGER = logging.getLogger("ferry.run")

# How long a worker thread (file I/O, encoding) may hold the GIL before the event
# loop gets it back. Python's default, 5 ms, showed up as 4.6 ms p99 tick lateness
# with 100 collectors at 100 Hz; 0.5 ms gave 2.35 ms (docs/performance.md).
GIL_SWITCH_INTERVAL_S = 0.0005

EXIT_CONFIG = 2


def tune_agent_process() -> None:
    """Process-wide settings for a capture agent (called by ``ferry run`` and the benchmarks).

    A short GIL switch interval (the writer thread's encoding held collectors
    back), and heap reuse for the sync client's megabyte chunks
    (``actors.adapters.malloc_tuning``).
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    tune_malloc()


EXIT_LOCKED = 3
CRASH_POINTS = ("confirmed",)


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` → (host, port), with a clear error."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


DEFAULT_API = ("127.0.0.1", 8085)


def add_api_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Adds ``--api HOST:PORT``, the agent's local API address (run, status, sync)."""
    parser.add_argument(
        "--api", type=parse_address, default=DEFAULT_API, metavar="HOST:PORT", help=help_text
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry run``."""
    parser = subparsers.add_parser(
        "run",
        help="run the agent in the foreground",
        description="Run the capture agent until SIGINT/SIGTERM (open files are finished "
        "first). SIGHUP or editing the config file reconfigures it live.",
    )
    parser.add_argument("--config", type=Path, required=True, help="robot config (JSON)")
    parser.add_argument(
        "--cloud",
        type=Path,
        metavar="FILE",
        help="a JSON file holding the cloud section (address, part_id, api_key_id, api_key, "
        "…); replaces the config's own, so credentials can live apart from the config",
    )
    parser.add_argument("--log-format", choices=("human", "json"), default="human")
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )
    add_api_argument(parser, "local API address (default 127.0.0.1:8085; port 0 picks a free one)")
    parser.add_argument("--no-api", action="store_true", help="do not serve the local API")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the fake components' data (default 0)"
    )
    # Fault injection for tests: the agent SIGKILLs itself at a named point of sync
    # ("confirmed": the cloud confirmed a file, which is not deleted yet).
    parser.add_argument("--crash-at", choices=CRASH_POINTS, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Imports are deferred so `ferry inspect` and `--help` start fast.
    import trio

    from actors.adapters.clock import PreciseClock
    from actors.agent import InvalidConfig
    from actors.config import ConfigError
    from actors.logs import setup_logging
    from actors.recovery import CaptureDirLocked

    setup_logging(args.log_format, args.log_level)
    tune_agent_process()
    cloud = None
    if args.cloud is not None:
        try:
            cloud = _read_cloud(args.cloud)
        except (OSError, ConfigError) as exc:
            print(f"ferry run: invalid --cloud file:\n{exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        trio.run(_main, args, cloud, clock=PreciseClock())
    except (InvalidConfig, CaptureDirLocked, BaseExceptionGroup) as exc:
        # Trio's nurseries wrap start-up errors in exception groups: look inside.
        found = find_error(exc, (InvalidConfig, CaptureDirLocked))
        if found is None:
            raise
        if isinstance(found, InvalidConfig):
            print(f"ferry run: invalid config {args.config}:\n{found}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"ferry run: {found}", file=sys.stderr)
        return EXIT_LOCKED
    return 0


def _crash_at(point: str) -> Callable[[str, SyncFile], None]:
    """A sync hook that kills this process with SIGKILL at ``point`` (crash tests)."""
    import os

    def hook(reached: str, file: SyncFile) -> None:
        if reached == point:
            LOGGER.warning("--crash-at %s: killing the agent at %s", point, file.path)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def find_error(exc: BaseException, kinds: tuple[type[Exception], ...]) -> Exception | None:
    """The first exception of one of ``kinds`` in ``exc`` or its (nested) groups."""
    if isinstance(exc, kinds):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_error(inner, kinds)
            if found is not None:
                return found
    return None


def _read_cloud(path: Path) -> CloudSettings:
    from actors.config import parse_cloud_file

    path = path.expanduser().resolve()
    return parse_cloud_file(path.read_text(), source=str(path), base_dir=path.parent)


def _config_link(settings: CloudSettings) -> ConfigLink:
    from actors.adapters.cloud_link import CloudLink
    from actors.adapters.grpc_config_link import GrpcConfigLink

    return GrpcConfigLink(CloudLink(settings))


async def _main(args: argparse.Namespace, cloud: CloudSettings | None) -> None:
    import trio

    from actors.adapters.clock import SystemWallClock
    from actors.adapters.disk import PsutilDiskUsage
    from actors.adapters.os_fs import OsFileSystem
    from actors.adapters.runner import ThreadRunner
    from actors.adapters.sync_links import grpc_connector
    from actors.agent import Agent, AgentOptions
    from actors.capture import CaptureSeams
    from actors.components import default_registry
    from actors.config_plan import load_plan

    host, port = args.api
    fs, runner = OsFileSystem(), ThreadRunner()
    options = AgentOptions(
        config_path=args.config.expanduser().resolve(),
        load_plan=functools.partial(load_plan, cloud=cloud),
        disk=PsutilDiskUsage(),
        api_host=host,
        api_port=port,
        serve_api=not args.no_api,
        sync_connect=grpc_connector(fs, runner),
        sync_on_point=_crash_at(args.crash_at) if args.crash_at else None,
        config_link=_config_link,
    )
    seams = CaptureSeams(
        registry=default_registry(),
        clock=SystemWallClock(),
        runner=runner,
        fs=fs,
        rng=random.Random(),
        seed=args.seed,
    )
    agent = Agent(options, seams)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run)
            if options.serve_api:
                LOGGER.info("status: ferry status --api %s:%d", host, agent.api_port)
            async for signum in signals:
                if signum == signal.SIGHUP:
                    LOGGER.info("SIGHUP: reloading %s", options.config_path)
                    agent.reload()
                    continue
                LOGGER.info("%s: finishing open files and stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
