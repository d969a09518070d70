"""Tests for edgedet.images: every Pillow mode to uint8 RGB, errors, listing, saving."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from edgedet import images
from edgedet.images import ImageError, list_images, load_image, save_image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _check_rgb(array, shape):
    assert isinstance(array, np.ndarray)
    assert array.dtype == np.uint8 and array.shape == (*shape, 3)
    assert array.flags.c_contiguous and array.flags.writeable


def test_rgb_png_exact(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    got = load_image(tmp_path / "a.png")
    _check_rgb(got, (7, 5))
    np.testing.assert_array_equal(got, pixels)


def test_exif_orientation_is_applied(tmp_path):
    # Stored 40 wide x 20 tall, red in the top-left 10x10 block, blue elsewhere.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:] = BLUE
    stored[:10, :10] = RED
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored top-left shows at top-right.
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    got = load_image(tmp_path / "phone.jpg")
    _check_rgb(got, (40, 20))
    top_right = got[2:8, -8:-2].mean(axis=(0, 1))
    top_left = got[2:8, 2:8].mean(axis=(0, 1))
    np.testing.assert_allclose(top_right, RED, atol=20)
    np.testing.assert_allclose(top_left, BLUE, atol=20)


def test_grayscale_and_bilevel(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    got = load_image(tmp_path / "l.png")
    _check_rgb(got, (3, 4))
    np.testing.assert_array_equal(got, np.repeat(gray[:, :, None], 3, axis=2))
    Image.fromarray(gray > 100).save(tmp_path / "one.png")  # mode "1"
    assert Image.open(tmp_path / "one.png").mode == "1"
    got = load_image(tmp_path / "one.png")
    np.testing.assert_array_equal(got[..., 0], np.where(gray > 100, 255, 0))


def test_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[0, 0, 3] = 0  # fully transparent pixel keeps its stored colour
    rgba[1, 1, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    got = load_image(tmp_path / "rgba.png")
    _check_rgb(got, (2, 2))
    assert (got == (10, 200, 30)).all()

    la = np.stack([np.full((2, 3), 90, np.uint8), np.zeros((2, 3), np.uint8)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert Image.open(tmp_path / "la.png").mode == "LA"
    assert (load_image(tmp_path / "la.png") == 90).all()


def _palette_image():
    image = Image.new("P", (4, 2))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.putdata([0, 1, 2, 1, 2, 2, 1, 0])
    return image


@pytest.mark.parametrize("name,transparency", [("p.png", None), ("pt.png", 0), ("pt.gif", 0)])
def test_palette_with_and_without_transparency(tmp_path, name, transparency, recwarn):
    options = {} if transparency is None else {"transparency": transparency}
    _palette_image().save(tmp_path / name, **options)
    opened = Image.open(tmp_path / name)
    assert opened.mode == "P" and ("transparency" in opened.info) == (transparency is not None)
    got = load_image(tmp_path / name)
    _check_rgb(got, (2, 4))
    palette = np.array([(0, 0, 0), RED, BLUE], np.uint8)
    np.testing.assert_array_equal(got, palette[[[0, 1, 2, 1], [2, 2, 1, 0]]])
    assert not [w for w in recwarn if "Palette" in str(w.message)]


def test_cmyk(tmp_path):
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255]]], np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.tif")
    got = load_image(tmp_path / "cmyk.tif")
    _check_rgb(got, (1, 3))
    np.testing.assert_array_equal(got[0], [(255, 255, 255), (0, 255, 255), (0, 0, 0)])


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 128 * 257, 65535, 1000]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    got = load_image(tmp_path / "deep.png")
    _check_rgb(got, (1, 5))
    np.testing.assert_array_equal(got[0, :, 0], [0, 1, 128, 255, 4])  # 1000 / 257 = 3.9
    assert (got[..., 0] == got[..., 2]).all()


def test_32_bit_int_and_float(tmp_path):
    in_16_bit_range = np.array([[0, 65535, 257]], np.int32)
    Image.fromarray(in_16_bit_range, "I").save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    np.testing.assert_array_equal(load_image(tmp_path / "i.tif")[0, :, 1], [0, 255, 1])

    signed = np.array([[-100, 0, 155]], np.int32)  # stretched min..max, 255 apart
    Image.fromarray(signed, "I").save(tmp_path / "signed.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "signed.tif")[0, :, 0], [0, 100, 255])

    unit = np.array([[0.0, 0.5, 1.0]], np.float32)
    Image.fromarray(unit, "F").save(tmp_path / "unit.tif")
    assert Image.open(tmp_path / "unit.tif").mode == "F"
    np.testing.assert_array_equal(load_image(tmp_path / "unit.tif")[0, :, 0], [0, 128, 255])

    wide = np.array([[10.0, 20.0, 30.0]], np.float32)
    Image.fromarray(wide, "F").save(tmp_path / "wide.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "wide.tif")[0, :, 0], [0, 128, 255])

    bad = np.array([[0.0, np.nan]], np.float32)
    Image.fromarray(bad, "F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageError, match="nan.tif.*NaN"):
        load_image(tmp_path / "nan.tif")


# ---------------------------------------------------------------- errors


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match=r"not found: '.*nope\.jpg'"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="received a folder"):
        load_image(tmp_path)


def test_text_file_named_jpg(tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a JPEG\n")
    with pytest.raises(ImageError, match=r"notes\.jpg.*not an image"):
        load_image(fake)
    assert issubclass(ImageError, ValueError)


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_truncated_file(tmp_path, suffix):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        tmp_path / f"full.{suffix}"
    )
    data = (tmp_path / f"full.{suffix}").read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=rf"cut\.{suffix}.*truncated or corrupt"):
        load_image(cut)


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_zero_sized_png(tmp_path):
    # Pillow cannot write a 0x0 image, so build the PNG by hand.
    header = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    png += _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")
    (tmp_path / "empty.png").write_bytes(png)
    with pytest.raises(ImageError, match=r"empty\.png"):
        load_image(tmp_path / "empty.png")


def test_zero_sized_image_message(tmp_path, monkeypatch):
    # Pillow refuses 0x0 files itself today; our own check covers decoders that don't.
    (tmp_path / "zero.png").write_bytes(b"placeholder")
    monkeypatch.setattr(images.Image, "open", lambda path: Image.new("RGB", (0, 5)))
    with pytest.raises(ImageError, match=r"zero\.png' is empty \(0x5 pixels\)"):
        load_image(tmp_path / "zero.png")


# ---------------------------------------------------------------- listing


def test_list_images(tmp_path):
    for name in ["b.jpg", "A.PNG", "c.txt", ".hidden.jpg", "d.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.jpeg").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "f.jpg").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["A.PNG", "b.jpg", "d.webp"]
    deep = [p.relative_to(tmp_path).as_posix() for p in list_images(str(tmp_path), True)]
    assert deep == ["A.PNG", "b.jpg", "d.webp", "sub/e.jpeg"]
    explicit = list_images([tmp_path / "d.webp", tmp_path / "sub", tmp_path / "c.txt"])
    assert [p.name for p in explicit] == ["d.webp", "e.jpeg", "c.txt"]


def test_list_images_errors(tmp_path):
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(ImageError, match=rf"No images found in folder '{tmp_path}'"):
        list_images(tmp_path)
    with pytest.raises(ImageError, match=r"not found: '.*missing'"):
        list_images([tmp_path / "missing"])


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_save_lossless_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)
    path = save_image(pixels, tmp_path / f"out{suffix}")
    np.testing.assert_array_equal(load_image(path), pixels)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]


def test_save_jpeg_and_grayscale(tmp_path):
    pixels = np.full((16, 16, 3), (200, 100, 50), np.uint8)
    save_image(pixels, tmp_path / "out.JPG")
    np.testing.assert_allclose(load_image(tmp_path / "out.JPG"), pixels, atol=4)
    save_image(np.full((3, 3), 77, np.uint8), tmp_path / "gray.png")
    assert (load_image(tmp_path / "gray.png") == 77).all()


def test_save_errors_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 array .* received dtype float32"):
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"shape \(2, 2, 4\)"):
        save_image(np.zeros((2, 2, 4), np.uint8), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"image format of '.*a\.xyz'"):
        save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "a.xyz")
    with pytest.raises(ValueError, match="empty image"):
        save_image(np.zeros((0, 2, 3), np.uint8), tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []
