"""Letterbox geometry, pixels and the inverse mapping, with hand-computed answers."""

import numpy as np
import pytest
import tensorflow as tf

from edgedet.config import MAX_IMAGE_SIDE, LetterboxConfig
from edgedet.letterbox import letterbox, letterbox_geometry, unletterbox

KERASCV = LetterboxConfig.kerascv(640)
ULTRA = LetterboxConfig.ultralytics(640)

# (height, width) -> (new_height, new_width, center pad_top, center pad_left), at size 640.
# new = floor(side * 640 / longest + 1/2), at least 1; centre offset = (640 - new) // 2.
GEOMETRY = {
    (480, 640): (480, 640, 80, 0),
    (640, 480): (640, 480, 0, 80),
    (1, 2000): (1, 640, 319, 0),  # 0.32 rounds to 0, clamped to 1
    (2000, 1): (640, 1, 0, 319),
    (17, 23): (473, 640, 83, 0),  # 17 * 640 / 23 = 473.04
    (640, 640): (640, 640, 0, 0),
    (1, 1280): (1, 640, 319, 0),  # 0.5 rounds half up to 1
    (3, 1280): (2, 640, 319, 0),  # 1.5 rounds half up to 2
    (1000, 999): (640, 639, 0, 0),  # 639.36
}


@pytest.mark.parametrize("hw", sorted(GEOMETRY))
def test_geometry_python_ints(hw):
    new_h, new_w, top, left = GEOMETRY[hw]
    assert letterbox_geometry(*hw, 640, "center") == (new_h, new_w, top, left)
    assert letterbox_geometry(*hw, 640, "bottom_right") == (new_h, new_w, 0, 0)


@pytest.mark.parametrize("hw", [(480, 640), (640, 480), (1, 2000), (2000, 1), (17, 23), (640, 640)])
@pytest.mark.parametrize("config", [KERASCV, ULTRA], ids=["bottom_right", "center"])
def test_constant_image_lands_in_expected_region(hw, config):
    height, width = hw
    colour = np.array([10, 200, 30], np.uint8)
    image = np.broadcast_to(colour, (1, height, width, 3))
    pixels, params = letterbox(tf.constant(image), config)
    pixels = pixels.numpy()
    new_h, new_w, top, left = GEOMETRY[hw]
    if config.pad_position == "bottom_right":
        top, left = 0, 0
    assert pixels.shape == (1, 640, 640, 3) and pixels.dtype == np.float32
    got = [int(v) for v in (params.new_height, params.new_width, params.pad_top, params.pad_left)]
    assert got == [new_h, new_w, top, left]
    assert (int(params.height), int(params.width)) == (height, width)
    inside = np.zeros((640, 640), bool)
    inside[top : top + new_h, left : left + new_w] = True
    np.testing.assert_array_equal(pixels[0][inside], np.broadcast_to(colour, (inside.sum(), 3)))
    assert np.all(pixels[0][~inside] == config.pad_value)


def test_rectangle_position_after_downscale():
    # 960 x 1280 -> 480 x 640 (exactly half): with half-pixel centres each output
    # pixel averages a 2x2 block, so a rectangle on even rows/cols keeps sharp edges.
    image = np.full((1, 960, 1280, 3), 50, np.uint8)
    image[0, 200:400, 640:960] = [255, 0, 0]
    for config, top in [(KERASCV, 0), (ULTRA, 80)]:
        pixels, params = letterbox(tf.constant(image), config)
        red = np.all(pixels.numpy()[0] == [255, 0, 0], axis=-1)
        rows, cols = np.nonzero(red)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (top + 100, top + 199, 320, 479)
        assert red.sum() == 100 * 160
        # ... and its letterboxed box maps back to the original rectangle.
        box = tf.constant([[[320.0, top + 100.0, 480.0, top + 200.0]]])
        np.testing.assert_allclose(unletterbox(box, params).numpy(), [[[640, 200, 960, 400]]])


def test_exact_model_size_is_identity():
    image = np.random.default_rng(0).integers(0, 256, (2, 640, 640, 3), dtype=np.uint8)
    for config in (KERASCV, ULTRA):
        pixels, _ = letterbox(tf.constant(image), config)
        np.testing.assert_array_equal(pixels.numpy(), image.astype(np.float32))


def test_dynamic_shapes_in_one_trace():
    config = LetterboxConfig(size=64, pad_position="center", pad_value=7)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def run(images):
        pixels, params = letterbox(images, config)
        return pixels, params.new_height, params.new_width, params.pad_top, params.pad_left

    assert run.get_concrete_function().structured_outputs[0].shape.as_list() == [None, 64, 64, 3]
    for shape, expected in [((3, 10, 40, 3), (16, 64, 24, 0)), ((1, 99, 33, 3), (64, 21, 0, 21))]:
        pixels, *geometry = run(np.full(shape, 200, np.uint8))
        assert pixels.shape == (shape[0], 64, 64, 3)
        assert [int(v) for v in geometry] == list(expected)


def test_unletterbox_maps_content_corners_and_clips():
    image = np.zeros((1, 17, 23, 3), np.uint8)
    _, params = letterbox(tf.constant(image), ULTRA)  # 473 x 640 at top 83
    boxes = tf.constant(
        [[[0.0, 83.0, 640.0, 83.0 + 473.0],  # the whole content
          [-50.0, 0.0, 700.0, 640.0],  # beyond the content: clipped
          [320.0, 83.0 + 473.0 / 2, 320.0, 83.0 + 473.0 / 2]]]  # centre point
    )
    np.testing.assert_allclose(
        unletterbox(boxes, params).numpy()[0],
        [[0, 0, 23, 17], [0, 0, 23, 17], [11.5, 8.5, 11.5, 8.5]],
        rtol=1e-6,
    )


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="uint8"):
        letterbox(tf.zeros((1, 8, 8, 3), tf.float32), KERASCV)
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        letterbox(tf.zeros((8, 8, 3), tf.uint8), KERASCV)
    with pytest.raises(tf.errors.InvalidArgumentError, match="<= 16384"):
        letterbox(tf.zeros((1, MAX_IMAGE_SIDE + 1, 1, 3), tf.uint8), KERASCV)
    with pytest.raises(tf.errors.InvalidArgumentError, match=">= 1"):
        letterbox(tf.zeros((1, 0, 5, 3), tf.uint8), KERASCV)


def ultralytics_rect(height, width, size=640, stride=32):
    """Ultralytics' LetterBox(auto=True, center=True) arithmetic, as in its predict."""
    r = min(size / height, size / width)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    dw, dh = np.mod(size - new_w, stride) / 2, np.mod(size - new_h, stride) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return (new_h + top + bottom, new_w + left + right), (new_h, new_w, top, left)


@pytest.mark.parametrize("hw", [(720, 1280), (1280, 720), (480, 640), (17, 23), (1, 2000),
                                (1000, 999), (1080, 1920), (300, 301)])
def test_rect_geometry_is_ultralytics_predicts(hw):
    from edgedet.letterbox import body_size

    body, geometry = ultralytics_rect(*hw)
    new_h, new_w, top, left = letterbox_geometry(*hw, 640, "center", "rect", 32)
    assert body_size(new_h, new_w, 640, "rect", 32) == body
    # Ultralytics rounds half to even, edgedet half up (documented); these sizes do not tie.
    assert (new_h, new_w, top, left) == geometry


def test_rect_letterbox_pixels():
    image = np.full((1, 720, 1280, 3), 200, np.uint8)
    config = LetterboxConfig(size=640, pad_position="center", pad_value=114, shape="rect")
    pixels, params = letterbox(image, config)
    assert pixels.shape == (1, 384, 640, 3)
    assert int(params.pad_top) == 12 and int(params.new_height) == 360
    np.testing.assert_array_equal(pixels[0, :12], 114.0)
    np.testing.assert_array_equal(pixels[0, 12:372], 200.0)
    np.testing.assert_array_equal(pixels[0, 372:], 114.0)
    square, _ = letterbox(image, LetterboxConfig.ultralytics(640))
    assert square.shape == (1, 640, 640, 3)
