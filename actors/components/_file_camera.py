"""The ``file`` camera: replays the images in a folder, in name order, round and round.

The folder is listed again for every frame (on ``ctx.runner`` or a worker
thread, with the file read), so images added or removed while Ferry runs are picked up; the camera
remembers the name it served last and serves the next name after it, wrapping
to the first. Files are sent as they are, with the MIME type of their extension,
unless the capture asks for another ``mime_type``, in which case the image is
transcoded with Pillow.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

from PIL import Image

from actors.components._fake_camera import PNG, encode, image_mime, source_annotation
from actors.components._protocol import Binary, ComponentConfigError
from actors.components._support import DispatchedComponent, Dispatcher, run_blocking, str_attr

if TYPE_CHECKING:
    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params
    from actors.ports import WallClock

MIME_BY_EXT: Final = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": PNG}
_TRANSCODE_JPEG_QUALITY: Final = 90


@final
class FileCamera(DispatchedComponent):
    """``rdk:component:camera`` model ``file``: serves a folder's JPEG/PNG files in turn.

    Attributes:
        folder: directory holding ``.jpg``/``.jpeg``/``.png`` files (required; checked
            to exist at construction). Other files and subdirectories are ignored.
        fail_rate, latency_ms: the shared fault hooks.

    Methods:
        ``ReadImage`` → one ``Binary``: the next file's bytes and the MIME type of its
        extension; with param ``mime_type`` (``image/jpeg``/``image/png``) differing from
        the file's, the image is transcoded;
        ``GetImages`` → the same, as source ``color``;
        ``DoCommand``.
        An empty folder fails the capture with ``FileNotFoundError``.

    Example::

        camera = FileCamera(ctx)  # attributes {"folder": "/data/frames"}
        [frame] = await camera.capture("ReadImage", {})
    """

    def __init__(self, ctx: ComponentContext) -> None:
        folder = Path(str_attr(ctx.attributes, "folder")).expanduser()
        # One stat at construction, so a wrong path fails at config time, not per frame.
        if not folder.is_dir():
            what = "does not exist" if not folder.exists() else "is not a directory"
            raise ComponentConfigError(f"attribute 'folder': {str(folder)!r} {what}")
        self._folder = folder
        self._clock: WallClock = ctx.clock
        self._runner = ctx.runner
        self._last: str | None = None
        self._dispatch = Dispatcher(
            ctx, {"ReadImage": self._read_image, "GetImages": self._get_images}
        )

    @property
    def folder(self) -> Path:
        """The folder served."""
        return self._folder

    async def aclose(self) -> None:
        """Nothing to release: files are opened and closed per frame."""

    async def _next_image(self, params: Params, annotations: bytes) -> Binary:
        wanted = image_mime(params) if "mime_type" in params else None
        captured_ns = self._clock.now_ns()
        folder, last = self._folder, self._last
        name, payload, mime = await run_blocking(
            self._runner, lambda: read_next(folder, last, wanted)
        )
        self._last = name
        return Binary(payload, mime, annotations, captured_ns)

    async def _read_image(self, params: Params) -> Captured:
        return [await self._next_image(params, b"")]

    async def _get_images(self, params: Params) -> Captured:
        return [await self._next_image(params, source_annotation("color"))]


def image_names(folder: Path) -> list[str]:
    """The image file names in ``folder``, sorted (blocking)."""
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_file() and Path(entry.name).suffix.lower() in MIME_BY_EXT
    )


def read_next(folder: Path, last: str | None, mime: str | None) -> tuple[str, bytes, str]:
    """Reads the image after ``last`` (wrapping), as ``(name, payload, mime)`` (blocking).

    Raises:
        FileNotFoundError: the folder holds no images.

    Example::

        name, payload, mime = read_next(Path("/data/frames"), None, None)
    """
    names = image_names(folder)
    if not names:
        exts = "/".join(sorted(MIME_BY_EXT))
        raise FileNotFoundError(f"no {exts} images in {str(folder)!r}")
    name = next((n for n in names if last is None or n > last), names[0])
    payload = (folder / name).read_bytes()
    own = MIME_BY_EXT[Path(name).suffix.lower()]
    if mime is None or mime == own:
        return name, payload, own
    with Image.open(io.BytesIO(payload)) as img:
        converted = img.convert("RGB") if mime != PNG else img.copy()
    return name, encode(converted, mime, _TRANSCODE_JPEG_QUALITY), mime
