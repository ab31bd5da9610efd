"""The ``fake`` camera: real JPEG/PNG frames and PCD point clouds that change every frame.

Frames are drawn with Pillow (a gradient that scrolls sideways, a square that
moves, the frame number in the corner) so they decode in any viewer and compress
like real images, and each frame differs from the last. Encoding is CPU work, so
it runs on ``ctx.runner`` (worker threads in production, inline in the simulator,
where threads would break determinism) or, without one, in a Trio worker thread.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, final

from PIL import Image, ImageChops, ImageDraw

from actors.components._protocol import Binary
from actors.components._support import DispatchedComponent, Dispatcher, int_attr, run_blocking
from protos.gen.viam.app.data import v1 as data_pb

if TYPE_CHECKING:
    import random

    from actors.components._protocol import Captured, ComponentContext
    from actors.components._support import Params

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
PCD: Final = "pointcloud/pcd"
_FORMATS: Final = {JPEG: "JPEG", PNG: "PNG"}
SOURCES: Final = ("color", "depth")


@final
class FakeCamera(DispatchedComponent):
    """``rdk:component:camera`` model ``fake``: moving test-pattern frames.

    Attributes (all optional):
        width, height: frame size in pixels (default 64 x 48, at most 4096 each).
        jpeg_quality: 1-95 (default 85).
        pointcloud_points: points per ``NextPointCloud`` (default 100).
        fail_rate, latency_ms: the shared fault hooks.

    Methods:
        ``ReadImage`` (params ``mime_type``: ``image/jpeg`` (default) or ``image/png``)
        → one ``Binary`` frame;
        ``GetImages`` (params ``filter_source_names``: subset of ``["color", "depth"]``)
        → a JPEG ``color`` frame and a 16-bit PNG ``depth`` frame in millimetres, each
        annotated with its source name as a classification label (spec §2.3);
        ``NextPointCloud`` → one binary PCD (``pointcloud/pcd``, fields ``x y z rgb``,
        metres); ``DoCommand``.
        Every frame carries ``time_received_ns`` from ``ctx.clock`` (capture time).

    Example::

        camera = FakeCamera(ctx)
        [frame] = await camera.capture("ReadImage", {"mime_type": "image/png"})
        assert frame.payload.startswith(b"\\x89PNG")
    """

    def __init__(self, ctx: ComponentContext) -> None:
        attrs = ctx.attributes
        self._width = int_attr(attrs, "width", 64, lo=1, hi=4096)
        self._height = int_attr(attrs, "height", 48, lo=1, hi=4096)
        self._quality = int_attr(attrs, "jpeg_quality", 85, lo=1, hi=95)
        self._points = int_attr(attrs, "pointcloud_points", 100, lo=1, hi=1_000_000)
        self._runner = ctx.runner
        self._clock = ctx.clock
        self._rng = ctx.rng
        # The seed picks the pattern's tint and start, so two cameras differ.
        self._tint = self._rng.randrange(256)
        self._frame = self._rng.randrange(1000)
        self._dispatch = Dispatcher(
            ctx,
            {
                "ReadImage": self._read_image,
                "GetImages": self._get_images,
                "NextPointCloud": self._next_point_cloud,
            },
        )

    def _next_frame(self) -> int:
        self._frame += 1
        return self._frame

    async def _read_image(self, params: Params) -> Captured:
        mime = image_mime(params)
        frame = self._next_frame()
        captured_ns = self._clock.now_ns()
        size, tint, quality = (self._width, self._height), self._tint, self._quality
        payload = await run_blocking(
            self._runner, lambda: encode(render_color(size, frame, tint), mime, quality)
        )
        return [Binary(payload, mime, time_received_ns=captured_ns)]

    async def _get_images(self, params: Params) -> Captured:
        wanted = source_filter(params)
        mime = image_mime(params)
        frame = self._next_frame()
        captured_ns = self._clock.now_ns()
        size, tint, quality = (self._width, self._height), self._tint, self._quality

        def work() -> list[Binary]:
            out: list[Binary] = []
            if "color" in wanted:
                color = encode(render_color(size, frame, tint), mime, quality)
                out.append(Binary(color, mime, source_annotation("color"), captured_ns))
            if "depth" in wanted:
                depth = encode(render_depth(size, frame), PNG, quality)
                out.append(Binary(depth, PNG, source_annotation("depth"), captured_ns))
            return out

        return await run_blocking(self._runner, work)

    async def _next_point_cloud(self, params: Params) -> Captured:
        del params  # NextPointCloud takes none.
        frame = self._next_frame()
        captured_ns = self._clock.now_ns()
        # Points are drawn here, not in the thread: ctx.rng is not thread-safe.
        points = sphere_points(self._rng, self._points, frame)
        payload = await run_blocking(self._runner, lambda: encode_pcd(points))
        return [Binary(payload, PCD, time_received_ns=captured_ns)]


def image_mime(params: Params) -> str:
    """The requested image MIME type (``mime_type`` param, default JPEG).

    Viam may append ``+lazy`` to ask for undecoded bytes; these are always encoded.

    Raises:
        ValueError: an unsupported type.

    Example::

        assert image_mime({"mime_type": "image/png+lazy"}) == "image/png"
    """
    mime = params.get("mime_type", JPEG)
    if isinstance(mime, str):
        mime = mime.removesuffix("+lazy")
    if mime not in _FORMATS:
        raise ValueError(f"mime_type {mime!r} is not supported; use one of {sorted(_FORMATS)}")
    assert isinstance(mime, str)  # a key of _FORMATS
    return mime


def source_filter(params: Params) -> frozenset[str]:
    """The ``filter_source_names`` of a ``GetImages`` capture; empty or absent means all.

    Raises:
        ValueError: the value is not a list of strings.
    """
    names = params.get("filter_source_names")
    if names is None:
        return frozenset(SOURCES)
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"filter_source_names must be a list of strings, got {names!r}")
    chosen = frozenset(str(n) for n in names)
    return chosen or frozenset(SOURCES)


def source_annotation(source: str) -> bytes:
    """A serialized ``viam.app.data.v1.Annotations`` labelling an image with its source."""
    return bytes(data_pb.Annotations(classifications=[data_pb.Classification(label=source)]))


def render_color(size: tuple[int, int], frame: int, tint: int) -> Image.Image:
    """An RGB test pattern for ``frame``: scrolling gradient, moving square, frame number.

    Example::

        img = render_color((64, 48), 7, 0)
        assert img.size == (64, 48) and img.mode == "RGB"
    """
    width, height = size
    ramp = Image.linear_gradient("L")
    across = ramp.transpose(Image.Transpose.ROTATE_90).resize(size)
    down = ramp.resize(size)
    red = ImageChops.offset(across, (frame * max(1, width // 20)) % width, 0)
    blue = Image.new("L", size, (tint + frame * 5) % 256)
    img = Image.merge("RGB", (red, down, blue))
    draw = ImageDraw.Draw(img)
    side = max(2, min(width, height) // 4)
    x = (frame * max(1, width // 32)) % max(1, width - side)
    y = int((height - side) / 2 * (1 + math.sin(frame / 5)))
    draw.rectangle((x, y, x + side, y + side), fill=(255, 255, 255))
    draw.text((1, 1), str(frame), fill=(0, 0, 0))
    return img


def render_depth(size: tuple[int, int], frame: int) -> Image.Image:
    """A 16-bit depth map in millimetres (``I;16``): a floor receding, the camera bobbing.

    Depths span 500-4980 mm, a plausible indoor range.
    """
    far_at_top = Image.linear_gradient("L").rotate(180).resize(size)
    bob = round(200 * (1 + math.sin(frame / 10)))  # 0-400 mm
    return far_at_top.convert("I").point(lambda v: v * 16 + 500 + bob).convert("I;16")


def encode(img: Image.Image, mime: str, quality: int) -> bytes:
    """Encodes ``img`` as JPEG or PNG (blocking, CPU-bound: call it in a thread)."""
    buf = io.BytesIO()
    if mime == JPEG:
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, _FORMATS[mime])
    return buf.getvalue()


def sphere_points(
    rng: random.Random, count: int, frame: int
) -> list[tuple[float, float, float, int]]:
    """``count`` points on a 0.5 m ball bobbing 1.5 m in front of the camera, coloured by depth."""
    cz = 1.5 + 0.2 * math.sin(frame / 10)
    out: list[tuple[float, float, float, int]] = []
    for _ in range(count):
        gx, gy, gz = rng.gauss(0, 1), rng.gauss(0, 1), rng.gauss(0, 1)
        norm = math.sqrt(gx * gx + gy * gy + gz * gz) or 1.0
        x, y, z = 0.5 * gx / norm, 0.5 * gy / norm, cz + 0.5 * gz / norm
        shade = int(255 * (z - cz + 0.5))
        out.append((x, y, z, (shade << 16) | (128 << 8) | (255 - shade)))
    return out


def encode_pcd(points: Sequence[tuple[float, float, float, int]]) -> bytes:
    """A binary PCD v0.7 file with fields ``x y z rgb`` (rgb packed ``0x00RRGGBB``).

    Example::

        data = encode_pcd([(0.0, 0.0, 1.0, 0xFF0000)])
        assert data.startswith(b"VERSION .7") and b"POINTS 1" in data
    """
    n = len(points)
    header = (
        "VERSION .7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F I\nCOUNT 1 1 1 1\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    body = b"".join(struct.pack("<fffi", x, y, z, rgb) for x, y, z, rgb in points)
    return header.encode("ascii") + body
