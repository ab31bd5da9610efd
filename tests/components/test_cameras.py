"""The fake and file cameras serve real, decodable images and point clouds."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from actors.components import Binary, ComponentConfigError, FakeCamera, FileCamera, default_registry
from protos.gen.viam.app.data import v1 as data_pb
from tests.components.support import InlineRunner, ManualClock, make_ctx


def _one(result) -> Binary:
    assert isinstance(result, list)
    assert len(result) == 1
    assert isinstance(result[0], Binary)
    return result[0]


def _decode(payload: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(payload))
    img.load()
    return img


def _labels(binary: Binary) -> list[str]:
    return [c.label for c in data_pb.Annotations.parse(binary.annotations).classifications]


async def test_fake_camera_read_image_is_a_decodable_jpeg_by_default():
    clock = ManualClock()
    camera = FakeCamera(make_ctx("camera", "fake", clock=clock, runner=InlineRunner()))
    frame = _one(await camera.capture("ReadImage", {}))
    assert frame.mime_type == "image/jpeg"
    img = _decode(frame.payload)
    assert (img.format, img.size, img.mode) == ("JPEG", (64, 48), "RGB")
    assert frame.time_received_ns == clock.now


async def test_fake_camera_read_image_honours_mime_type_and_size():
    attrs = {"width": 32, "height": 20}
    camera = FakeCamera(make_ctx("camera", "fake", attrs, runner=InlineRunner()))
    frame = _one(await camera.capture("ReadImage", {"mime_type": "image/png"}))
    assert frame.mime_type == "image/png"
    img = _decode(frame.payload)
    assert (img.format, img.size) == ("PNG", (32, 20))


async def test_fake_camera_frames_change_between_captures():
    camera = FakeCamera(make_ctx("camera", "fake", runner=InlineRunner()))
    frames = [_one(await camera.capture("ReadImage", {"mime_type": "image/png"})) for _ in range(3)]
    pixels = [_decode(f.payload).tobytes() for f in frames]
    assert len(set(pixels)) == 3


async def test_fake_camera_frames_are_seeded():
    async def first_frame(seed: int) -> bytes:
        camera = FakeCamera(make_ctx("camera", "fake", seed=seed, runner=InlineRunner()))
        return _one(await camera.capture("ReadImage", {"mime_type": "image/png"})).payload

    assert await first_frame(1) == await first_frame(1)
    assert await first_frame(1) != await first_frame(2)


async def test_fake_camera_encodes_on_the_injected_runner():
    runner = InlineRunner()
    camera = FakeCamera(make_ctx("camera", "fake", runner=runner))
    await camera.capture("ReadImage", {})
    await camera.capture("GetImages", {})
    await camera.capture("NextPointCloud", {})
    assert runner.calls == 3


async def test_fake_camera_without_a_runner_encodes_in_a_worker_thread():
    camera = FakeCamera(make_ctx("camera", "fake"))
    assert _decode(_one(await camera.capture("ReadImage", {})).payload).format == "JPEG"


async def test_fake_camera_rejects_an_unsupported_mime_type():
    camera = FakeCamera(make_ctx("camera", "fake", runner=InlineRunner()))
    with pytest.raises(ValueError, match="image/gif"):
        await camera.capture("ReadImage", {"mime_type": "image/gif"})


async def test_fake_camera_accepts_viam_lazy_mime_suffix():
    camera = FakeCamera(make_ctx("camera", "fake", runner=InlineRunner()))
    frame = _one(await camera.capture("ReadImage", {"mime_type": "image/png+lazy"}))
    assert frame.mime_type == "image/png"


async def test_get_images_returns_color_and_16_bit_depth_labelled_by_source():
    camera = FakeCamera(make_ctx("camera", "fake", runner=InlineRunner()))
    color, depth = await camera.capture("GetImages", {})
    assert (color.mime_type, _labels(color)) == ("image/jpeg", ["color"])
    assert (depth.mime_type, _labels(depth)) == ("image/png", ["depth"])
    depth_img = _decode(depth.payload)
    assert depth_img.mode.startswith("I")
    lo, hi = depth_img.getextrema()
    assert 500 <= lo < hi <= 4980
    assert color.time_received_ns == depth.time_received_ns


async def test_get_images_filter_source_names_selects_sources():
    camera = FakeCamera(make_ctx("camera", "fake", runner=InlineRunner()))
    [depth] = await camera.capture("GetImages", {"filter_source_names": ["depth"]})
    assert _labels(depth) == ["depth"]


async def test_next_point_cloud_is_a_valid_binary_pcd():
    camera = FakeCamera(
        make_ctx("camera", "fake", {"pointcloud_points": 50}, runner=InlineRunner())
    )
    cloud = _one(await camera.capture("NextPointCloud", {}))
    assert cloud.mime_type == "pointcloud/pcd"
    header, _, body = cloud.payload.partition(b"DATA binary\n")
    fields = dict(line.split(" ", 1) for line in header.decode("ascii").splitlines())
    assert fields["VERSION"] == ".7"
    assert fields["FIELDS"] == "x y z rgb"
    assert fields["POINTS"] == fields["WIDTH"] == "50"
    assert len(body) == 50 * 16
    for x, y, z, _rgb in struct.iter_unpack("<fffi", body):
        assert 0.5 < z < 2.5
        assert abs(x) <= 0.5
        assert abs(y) <= 0.5


@pytest.mark.parametrize(
    ("attrs", "attribute"),
    [({"width": 0}, "width"), ({"height": 1.5}, "height"), ({"jpeg_quality": 100}, "jpeg_quality")],
)
def test_fake_camera_rejects_bad_attributes(attrs, attribute):
    with pytest.raises(ComponentConfigError, match=f"attribute '{attribute}'"):
        FakeCamera(make_ctx("camera", "fake", attrs))


# --- file camera ----------------------------------------------------------------------------


def _write_image(path, color, fmt) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, fmt)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    files = {
        "b.jpg": _write_image(folder / "b.jpg", "green", "JPEG"),
        "a.png": _write_image(folder / "a.png", "red", "PNG"),
        "c.JPEG": _write_image(folder / "c.JPEG", "blue", "JPEG"),
    }
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub.png").mkdir()  # a directory named like an image is skipped
    return folder, files


async def test_file_camera_serves_images_in_sorted_order_round_robin(image_folder):
    folder, files = image_folder
    camera = FileCamera(make_ctx("camera", "file", {"folder": str(folder)}, runner=InlineRunner()))
    frames = [_one(await camera.capture("ReadImage", {})) for _ in range(4)]
    assert [f.payload for f in frames] == [
        files["a.png"],
        files["b.jpg"],
        files["c.JPEG"],
        files["a.png"],
    ]
    assert [f.mime_type for f in frames] == ["image/png", "image/jpeg", "image/jpeg", "image/png"]


async def test_file_camera_picks_up_new_files(image_folder):
    folder, _ = image_folder
    camera = FileCamera(make_ctx("camera", "file", {"folder": str(folder)}, runner=InlineRunner()))
    await camera.capture("ReadImage", {})  # a.png
    added = _write_image(folder / "aa.png", "white", "PNG")
    assert _one(await camera.capture("ReadImage", {})).payload == added


async def test_file_camera_transcodes_when_another_mime_type_is_asked(image_folder):
    folder, _ = image_folder
    camera = FileCamera(make_ctx("camera", "file", {"folder": str(folder)}, runner=InlineRunner()))
    frame = _one(await camera.capture("ReadImage", {"mime_type": "image/jpeg"}))  # a.png
    assert frame.mime_type == "image/jpeg"
    assert _decode(frame.payload).format == "JPEG"


async def test_file_camera_get_images_labels_the_color_source(image_folder):
    folder, files = image_folder
    camera = FileCamera(make_ctx("camera", "file", {"folder": str(folder)}))
    frame = _one(await camera.capture("GetImages", {}))
    assert frame.payload == files["a.png"]
    assert _labels(frame) == ["color"]


async def test_file_camera_with_no_images_fails_the_capture_clearly(tmp_path):
    camera = FileCamera(
        make_ctx("camera", "file", {"folder": str(tmp_path)}, runner=InlineRunner())
    )
    with pytest.raises(FileNotFoundError, match=r"no \.jpeg/\.jpg/\.png images"):
        await camera.capture("ReadImage", {})


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({}, "attribute 'folder' is required"),
        ({"folder": ""}, "attribute 'folder' must be a non-empty string"),
        ({"folder": 3}, "attribute 'folder' must be a non-empty string"),
        ({"folder": "/no/such/folder"}, "'/no/such/folder' does not exist"),
    ],
)
def test_file_camera_rejects_a_bad_folder_at_construction(attrs, expected):
    with pytest.raises(ComponentConfigError, match=expected):
        FileCamera(make_ctx("camera", "file", attrs))


def test_file_camera_rejects_a_folder_that_is_a_file(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"")
    with pytest.raises(ComponentConfigError, match="is not a directory"):
        default_registry(entry_points=list).create(
            make_ctx("camera", "file", {"folder": str(path)}, name="cam")
        )
