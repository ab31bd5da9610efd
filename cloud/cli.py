"""``ferry cloud``: run the ingestion/query server, manage its API keys and fleet configs.

``ferry cloud serve`` runs until SIGINT/SIGTERM and shuts down gracefully;
``ferry cloud keys create`` prints a new API key (its secret is shown once);
``ferry cloud config|fragment|parts`` edit fleet configs (``cloud/fleet/cli.py``).
Heavy imports (grpclib, the store) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cloud.aio_loop import run_asyncio
from cloud.defaults import DEFAULT_DATA_DIR, DEFAULT_PORT, DEFAULT_UPLOAD_IDLE_S

if TYPE_CHECKING:
    from cloud.server import ServerOptions

EXIT_USAGE = 2


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry cloud serve`` and ``ferry cloud keys create``."""
    cloud = subparsers.add_parser(
        "cloud",
        help="the cloud ingestion and query server",
        description="Run Ferry's cloud service (Viam-compatible ingest and query) and "
        "manage its API keys.",
    )
    commands = cloud.add_subparsers(title="cloud commands", dest="cloud_command", required=True)

    serve = commands.add_parser("serve", help="serve gRPC until SIGINT/SIGTERM")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any)"
    )
    _data_dir(serve, DEFAULT_DATA_DIR)
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain (enables TLS)")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument("--workers", type=_positive, default=8, help="store worker threads")
    serve.add_argument(
        "--max-upload-bytes",
        type=_positive,
        default=1 << 30,
        help="largest streamed Viam upload (FileUpload, StreamingDataCaptureUpload)",
    )
    serve.add_argument(
        "--expire-uploads-after-days",
        type=_non_negative_float,
        default=DEFAULT_UPLOAD_IDLE_S / 86_400,
        metavar="DAYS",
        help="expire an open upload with no chunk for DAYS (default 30; 0 = never)",
    )
    serve.add_argument("--log-format", choices=("human", "json"), default="human")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    serve.set_defaults(handler=_serve)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(title="keys commands", dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create an API key and print it once")
    create.add_argument("--org", required=True, help="organization id the key belongs to")
    create.add_argument("--location", required=True, help="location id the key may write to")
    create.add_argument("--part", help="restrict the key to one robot part")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    _data_dir(create, DEFAULT_DATA_DIR)
    create.set_defaults(handler=_create_key)

    from cloud.fleet.cli import register_fleet

    register_fleet(commands)


def _data_dir(parser: argparse.ArgumentParser, default: Path) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=default, help=f"the store's directory (default {default})"
    )


def _serve(args: argparse.Namespace) -> int:

    from actors.adapters.malloc_tuning import tune_malloc
    from actors.logs import setup_logging
    from cloud.server import ServerOptions

    if (args.tls_cert is None) != (args.tls_key is None):
        print("ferry cloud serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(args.log_format, args.log_level)
    tune_malloc()  # upload chunks reuse heap instead of faulting in fresh pages
    options = ServerOptions(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        workers=args.workers,
        max_stream_upload_bytes=args.max_upload_bytes,
        expire_uploads_after_s=args.expire_uploads_after_days * 86_400,
    )
    try:
        run_asyncio(_run_server(options))
    except OSError as exc:
        print(f"ferry cloud serve: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run_server(options: ServerOptions) -> None:
    import asyncio
    import logging
    import signal

    from cloud.server import CloudServer

    # Handlers first: a signal that arrives right after the ready line still stops us cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = CloudServer(options)
    try:
        host, port = await server.start()
        scheme = "grpcs" if options.tls_cert else "grpc"
        # Tests and scripts wait for this line; keep its shape.
        print(f"ferry cloud: listening on {host}:{port} ({scheme})", flush=True)
        await stop.wait()
    finally:
        logging.getLogger("ferry.cloud").info("shutting down")
        await server.stop()


def _create_key(args: argparse.Namespace) -> int:
    import time

    from cloud.auth import create_api_key
    from cloud.errors import InvalidArgument
    from cloud.store.sqlite import SqliteStore

    # The server may be running on this store: never sweep its in-flight files.
    store = SqliteStore(args.data_dir.expanduser(), sweep=False)
    try:
        key_id, key = create_api_key(
            store,
            org_id=args.org,
            location_id=args.location,
            part_id=args.part,
            wall_ns=time.time_ns,
        )
    except InvalidArgument as exc:
        print(f"ferry cloud keys create: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    if args.json:
        record = {
            "key_id": key_id,
            "key": key,
            "org_id": args.org,
            "location_id": args.location,
            "part_id": args.part,
        }
        print(json.dumps(record))
    else:
        print(f"key_id: {key_id}\nkey:    {key}\n(the key is shown only once; store it safely)")
    return 0
