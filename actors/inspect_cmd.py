"""``ferry inspect``: capture files as JSON Lines, streamed record by record.

For each file, one ``header`` line and then one ``record`` line per reading; with
``--summary``, one ``summary`` line per file and a final ``totals`` line. A file
that ends early or holds bad bytes prints everything intact first, then one line
on stderr naming the file and byte offset; the command goes on with the next
file and exits with status 1. Output is valid JSON even for NaN and infinities
(which JSON cannot hold): they are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, as in protobuf's JSON mapping.

This module is the command: its arguments, which files, and reading them.
The shape of each line and the payload files are in ``actors._inspect_render``.

Example::

    $ ferry inspect ~/.viam/capture/rdk_component_sensor/env/Readings
    {"kind":"header","path":".../2026-08-21T15_04_05.123456Z.capture",...}
    {"kind":"record","path":"...","offset":64,"time_requested":"2026-08-21T15:04:05.123456789Z",...}
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, final

from actors._inspect_render import (
    _binary_ext,
    _FileStats,
    _summary_json,
    annotations_json,
    any_json,
    dumps,
    format_rfc3339,
    header_json,
    payload_size,
    record_json,
    write_payload,
)
from actors.codec import (
    CAPTURE_EXT,
    PROG_EXT,
    CaptureFileError,
    CaptureFileReader,
    CorruptCaptureFile,
    RawRecord,
    SensorRecord,
    WireError,
    decode_sensor_data,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Mapping

    from protos.gen.viam.app.datasync import v1 as datasync

__all__ = [
    "CAPTURE_SUFFIXES",
    "COMMAND",
    "PROG",
    "InspectOptions",
    "annotations_json",
    "any_json",
    "dumps",
    "format_rfc3339",
    "header_json",
    "inspect_paths",
    "payload_size",
    "record_json",
    "register",
    "write_payload",
]

COMMAND = "inspect"
CAPTURE_SUFFIXES = (CAPTURE_EXT, PROG_EXT)
PROG = f"ferry {COMMAND}"


@final
@dataclass(frozen=True, slots=True)
class InspectOptions:
    """What ``ferry inspect`` was asked to do.

    Attributes:
        paths: files and directories, in the order given.
        summary: one line per file instead of one per record.
        binary_out: where binary payloads are written, if anywhere.
    """

    paths: tuple[str, ...]
    summary: bool = False
    binary_out: Path | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> InspectOptions:
        """Builds options from the parsed ``ferry inspect`` arguments."""
        paths: list[str] = args.paths
        summary: bool = args.summary
        binary_out: str | None = args.binary_out
        return cls(tuple(paths), summary, Path(binary_out) if binary_out else None)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry inspect`` to the ``ferry`` parser."""
    parser = subparsers.add_parser(
        COMMAND,
        help="print capture files as JSON Lines",
        description=(
            "Print the header and records of capture files (.capture, .prog) as JSON Lines. "
            "A directory is searched recursively, in sorted order. Exits 1 if any file "
            "is missing, truncated or corrupt (after printing what is intact)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="capture file or directory")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--summary",
        action="store_true",
        help="one line per file (records, bytes, time range) and a final totals line",
    )
    mode.add_argument(
        "--binary-out",
        metavar="DIR",
        help="write each binary payload to DIR as <file stem>-<offset><ext>",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    return inspect_paths(InspectOptions.from_namespace(args), out=sys.stdout, err=sys.stderr)


def inspect_paths(options: InspectOptions, *, out: TextIO, err: TextIO) -> int:
    """Inspects every path in ``options``, writing JSON Lines to ``out``.

    Args:
        options: the paths and output mode.
        out: where the JSON Lines go.
        err: where one line per unreadable path or file goes.

    Returns:
        0 when every file was read in full, else 1.

    Example::

        options = InspectOptions(("/tmp/capture",), summary=True)
        status = inspect_paths(options, out=sys.stdout, err=sys.stderr)
    """
    sink = _Sink(out, err)
    totals = _Totals()
    for target in options.paths:
        for path in _expand(target, sink):
            _inspect_path(path, options, sink, totals)
    if options.summary:
        sink.line(totals.as_json(errors=sink.errors))
    return 0 if sink.errors == 0 else 1


@final
class _Sink:
    """stdout for lines, stderr for errors; stdout is flushed first so they interleave right."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self.errors = 0

    def line(self, obj: Mapping[str, object]) -> None:
        self._out.write(dumps(obj) + "\n")

    def error(self, message: str) -> None:
        self.errors += 1
        self._out.flush()
        self._err.write(f"{PROG}: {message}\n")
        self._err.flush()


@final
@dataclass(slots=True)
class _Totals:
    files: int = 0
    records: int = 0
    bytes: int = 0
    payload_bytes: int = 0

    def as_json(self, *, errors: int) -> dict[str, object]:
        return {
            "kind": "totals",
            "files": self.files,
            "records": self.records,
            "bytes": self.bytes,
            "payload_bytes": self.payload_bytes,
            "errors": errors,
        }


# --- which files -------------------------------------------------------------------------


def _expand(target: str, sink: _Sink) -> Iterator[str]:
    """The files ``target`` names: itself, or the capture files under a directory."""
    if os.path.isdir(target):
        yield from _walk(target, sink)
    elif os.path.lexists(target):
        yield target
    else:
        sink.error(f"{target}: no such file or directory")


def _walk(root: str, sink: _Sink) -> Iterator[str]:
    def report(exc: OSError) -> None:
        sink.error(f"{exc.filename}: {exc.strerror or exc}")

    found: list[Path] = []
    for directory, _dirs, files in os.walk(root, onerror=report):
        found.extend(Path(directory, name) for name in files if name.endswith(CAPTURE_SUFFIXES))
    # Path order compares part by part, so a directory's files stay together.
    for path in sorted(found):
        yield str(path)


# --- one file ----------------------------------------------------------------------------


def _inspect_path(path: str, options: InspectOptions, sink: _Sink, totals: _Totals) -> None:
    try:
        _inspect_file(path, options, sink, totals)
    except CaptureFileError as exc:
        sink.error(str(exc))  # "<path>: offset <n>: <reason>"
    except BrokenPipeError:
        raise  # stdout's reader is gone: not this file's fault, and the end of the run
    except OSError as exc:
        sink.error(f"{exc.filename or path}: {exc.strerror or exc}")


def _inspect_file(path: str, options: InspectOptions, sink: _Sink, totals: _Totals) -> None:
    with CaptureFileReader(Path(path)) as reader:
        header = reader.header
        if not options.summary:
            sink.line(header_json(path, header))
        stats = _FileStats()
        error: CaptureFileError | None = None
        try:
            for frame, record in _records(reader):
                stats.add(frame, record)
                if not options.summary:
                    sink.line(_record_line(path, header, frame, record, options.binary_out))
        except CaptureFileError as exc:
            error = exc
    size = os.stat(path).st_size
    totals.files += 1
    totals.records += stats.records
    totals.bytes += size
    totals.payload_bytes += stats.payload_bytes
    if options.summary:
        sink.line(_summary_json(path, header, stats, size, error))
    if error is not None:
        raise error


def _records(reader: CaptureFileReader) -> Iterator[tuple[RawRecord, SensorRecord]]:
    # Raw frames as well as records: the summary counts payload bytes, which a
    # decoded record no longer knows for tabular data.
    for frame in reader.raw_records():
        try:
            record = decode_sensor_data(frame.body)
        except WireError as exc:
            raise CorruptCaptureFile(
                reader.path, frame.offset, f"record is not a SensorData: {exc}"
            ) from None
        yield frame, record


def _record_line(
    path: str,
    header: datasync.DataCaptureMetadata,
    frame: RawRecord,
    record: SensorRecord,
    binary_out: Path | None,
) -> dict[str, object]:
    line = record_json(path, frame, record, header)
    if record.binary is not None and binary_out is not None:
        stem = f"{Path(path).stem}-{frame.offset}"
        ext = _binary_ext(header, record)
        line["binary_path"] = str(write_payload(binary_out, stem, ext, record.binary))
    return line
