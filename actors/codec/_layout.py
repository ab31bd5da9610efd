"""Where capture files live and what they are called (Viam's layout, spec §2.1-2.3).

``<capture_dir>/<api with : → _>/<resource name>/<method>/<UTC time>.prog|.capture``.
Names are the wall-clock time with microseconds, e.g.
``2026-08-21T15_04_05.123456Z.capture``; Ferry writes UTC (``Z``), which Viam's
parsers accept, instead of local time, so names sort in time order across zones.
"""

from __future__ import annotations

import datetime as _dt
import mimetypes
from typing import TYPE_CHECKING

from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from pathlib import Path

PROG_EXT = ".prog"
CAPTURE_EXT = ".capture"
FAILED_DIR = "failed"
# Directories the sync walker never enters (spec §2.1).
SKIPPED_DIRS = frozenset({FAILED_DIR, "datasetUpload"})

# Methods whose readings are binary; every other method is tabular (spec §1.2).
BINARY_METHODS = frozenset(
    {
        "NextPointCloud",
        "ReadImage",
        "PointCloudMap",
        "GetImages",
        "CaptureAllFromCamera",
        "GetAudio",
    }
)

_MIME_EXT = {
    "image/jpeg": ".jpeg",
    "image/png": ".png",
    "pointcloud/pcd": ".pcd",
    "image/vnd.viam.dep": ".dep",
    "image/vnd.viam.rgba": ".rgba",
    "video/mp4": ".mp4",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
}
_AUDIO_CODEC_EXT = {"pcm16": ".wav", "pcm32": ".wav", "pcm32_float": ".wav", "mp3": ".mp3"}


def is_binary_method(method: str) -> bool:
    """Whether ``method`` captures binary readings (one file per reading)."""
    return method in BINARY_METHODS


def data_type_for(method: str) -> datasync.DataType:
    """The header ``type`` for a capture method."""
    if is_binary_method(method):
        return datasync.DataType.BINARY_SENSOR
    return datasync.DataType.TABULAR_SENSOR


def mime_for_extension(extension: str) -> str:
    """The MIME type Viam's extensions imply (``.png`` → ``image/png``), or ``""``.

    Viam's own types first (``.pcd``, ``.dep``, ``.jpeg``), then the platform's
    ``mimetypes`` table for the rest.
    """
    ext = extension.lower() if extension.startswith(".") else f".{extension.lower()}"
    if ext == ".":
        return ""
    for mime, known in _MIME_EXT.items():
        if known == ext:
            return mime
    return mimetypes.types_map.get(ext, "")


def extension_for_mime(mime_type: str) -> str:
    """The file extension Viam's uploader uses for a MIME type, or ``""``."""
    return _MIME_EXT.get(mime_type, "")


def file_extension_for(method: str, params: dict[str, object] | None = None) -> str:
    """The header ``file_extension`` for a method and its ``additional_params``.

    Example::

        file_extension_for("ReadImage", {"mime_type": "image/png"})  # ".png"
    """
    params = params or {}
    if not is_binary_method(method):
        return ".dat"
    if method == "NextPointCloud":
        return ".pcd"
    if method == "ReadImage":
        mime = params.get("mime_type", "image/jpeg")
        return extension_for_mime(mime) if isinstance(mime, str) else ""
    if method == "GetAudio":
        codec = params.get("codec", "")
        return _AUDIO_CODEC_EXT.get(codec, "") if isinstance(codec, str) else ""
    return ""


def _clean(part: str) -> str:
    if not part or part in (".", "..") or "/" in part or "\x00" in part:
        raise ValueError(f"invalid path component {part!r}")
    return part.replace(":", "_")


def collector_dir(capture_dir: Path, api: str, name: str, method: str) -> Path:
    """The directory one collector writes into.

    Every ``:`` in the parts Ferry adds becomes ``_`` (Viam does this to the whole
    path; Ferry leaves the user's ``capture_dir`` as given).

    Example::

        collector_dir(Path("/c"), "rdk:component:camera", "cam", "ReadImage")
        # Path("/c/rdk_component_camera/cam/ReadImage")
    """
    return capture_dir / _clean(api) / _clean(name) / _clean(method)


def file_stem(wall_ns: int) -> str:
    """The name (without extension) of a file created at ``wall_ns``, in UTC."""
    seconds, nanos = divmod(wall_ns, 1_000_000_000)
    stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
    return f"{stamp:%Y-%m-%dT%H_%M_%S}.{nanos // 1000:06d}Z"


def stem_time_ns(stem: str) -> int | None:
    """Parses a name made by ``file_stem`` (or Viam's, with a zone) back to ns; None if not one."""
    text = stem.replace("_", ":")
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    delta = parsed - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
