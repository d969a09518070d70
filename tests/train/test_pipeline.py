"""The tf.data pipeline: letterbox like the exported graph, boxes stay on the objects."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from edgedet.config import LetterboxConfig  # noqa: E402
from edgedet.data import SyntheticShapes  # noqa: E402
from edgedet.letterbox import letterbox  # noqa: E402
from edgedet.train.pipeline import (  # noqa: E402
    AugmentConfig,
    augment_one,
    draw_batch,
    letterbox_sample,
    make_dataset,
    mosaic_group,
    pad_boxes,
)

SIZE = 96


def _mask_boxes(masks):
    """Tight xyxy boxes of float masks `[S, S, N]` (> 0.5), NaN for empty ones."""
    boxes = []
    for k in range(masks.shape[-1]):
        on = masks[..., k] > 0.5
        if not on.any():
            boxes.append([np.nan] * 4)
            continue
        rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
        boxes.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
    return np.array(boxes, np.float32)


def _samples(count, size=(60, 130), seed=3):
    data = SyntheticShapes(num_images=count, image_size=size, seed=seed, min_objects=2,
                           max_objects=4, min_object_size=10)
    return [data.generate(i, return_masks=True) for i in range(count)]


def _letterboxed_with_masks(sample, max_boxes=8):
    """Letterboxed pixels + mask channels (same resize), padded boxes and classes."""
    config = LetterboxConfig.kerascv(SIZE)
    pixels, boxes = letterbox_sample(tf.constant(sample["image"]), tf.constant(sample["boxes"]),
                                     config)
    masks = np.zeros((max_boxes,) + sample["image"].shape[:2], np.uint8)
    masks[: len(sample["masks"])] = sample["masks"] * 255
    masks = np.repeat(masks[..., None], 3, axis=-1)
    mask_pixels, _ = letterbox(tf.constant(masks), config)  # same function, per mask
    stacked = tf.concat([pixels, tf.transpose(mask_pixels[..., 0], [1, 2, 0]) / 255.0], -1)
    boxes, classes = pad_boxes(boxes, tf.range(len(sample["boxes"])), max_boxes)
    return stacked, boxes, classes


def _check_on_objects(image, boxes, classes, tolerance=1.6):
    """Each kept box is the tight box of its object's transformed mask (± tolerance px)."""
    masks = _mask_boxes(np.asarray(image)[..., 3:])
    kept = 0
    for box, index in zip(np.asarray(boxes), np.asarray(classes)):
        if index < 0:
            continue
        kept += 1
        truth = masks[index]
        assert not np.isnan(truth).any(), f"box {box} for object {index} has no pixels"
        # A crop at the border may cut a non-rectangular object: the box is
        # clipped to the image, so it can only be larger than the visible part.
        assert np.all(np.abs(box - truth) <= tolerance) or (
            np.all(box[:2] <= truth[:2] + tolerance) and np.all(box[2:] >= truth[2:] - tolerance)
            and (np.any(box <= tolerance) or np.any(box >= SIZE - tolerance))
        ), f"box {box} vs object pixels {truth}"
    return kept


def test_letterbox_matches_the_exported_graph_and_keeps_boxes_on_objects():
    for sample in _samples(4):
        image, boxes, classes = _letterboxed_with_masks(sample)
        expected, _ = letterbox(tf.constant(sample["image"])[None], LetterboxConfig.kerascv(SIZE))
        np.testing.assert_array_equal(image[..., :3].numpy(), expected[0].numpy())
        assert _check_on_objects(image, boxes, classes) == len(sample["boxes"])


def test_augmentations_move_boxes_with_the_pixels():
    tf.random.set_seed(0)
    config = AugmentConfig(mosaic=1.0, scale=0.4, translate=0.2, flip=0.5, min_visible=0.6)
    samples = [_letterboxed_with_masks(s) for s in _samples(8, seed=5)]
    checked = 0
    for start in (0, 4):
        group = [tf.stack(parts) for parts in zip(*samples[start : start + 4])]
        # Mosaic keeps indices of 4 images: offset each image's mask channels.
        images, boxes, classes = group
        offset = tf.range(4)[:, None] * 8
        classes = tf.where(classes >= 0, classes + offset, -1)
        masks = tf.concat([images[k, ..., 3:] for k in range(4)], axis=-1)  # [S, S, 32]
        tiles = [tf.concat([images[k, ..., :3], _only(masks, k)], -1) for k in range(4)]
        mixed = mosaic_group(tf.stack(tiles), boxes, classes, SIZE, config)
        for image, b, c in zip(*mixed):
            image, b, c = augment_one(image, b, c, SIZE, config)
            checked += _check_on_objects(image, b, c, tolerance=2.1)
    assert checked >= 8  # the crops keep most objects


def _only(masks, k):
    """Mask channels of image k at their place among all 32, zeros elsewhere."""
    keep = np.zeros(32, np.float32)
    keep[k * 8 : (k + 1) * 8] = 1
    return masks * keep


def test_flip_and_colour_jitter():
    sample = _samples(1)[0]
    image, boxes, classes = _letterboxed_with_masks(sample)
    tf.random.set_seed(1)
    config = AugmentConfig(mosaic=0, scale=0, translate=0, flip=1.0, hsv_h=0.1, hsv_s=0.5,
                           hsv_v=0.5)
    out, b, c = augment_one(image, boxes, classes, SIZE, config)
    assert _check_on_objects(out, b, c) == len(sample["boxes"])
    np.testing.assert_array_equal(out[..., 3:].numpy(), image[:, ::-1, 3:].numpy())
    assert not np.allclose(out[..., :3].numpy(), image[:, ::-1, :3].numpy())


def test_make_dataset_batches_and_draws(tmp_path):
    data = SyntheticShapes(num_images=10, image_size=(50, 120), seed=0)
    dataset = make_dataset(data, 4, LetterboxConfig.kerascv(64), max_boxes=12,
                           augment=AugmentConfig(), shuffle=True)
    batches = list(dataset)
    assert [b[0].shape[0] for b in batches] == [4, 4]  # mosaic groups of 4: 8 of 10 images
    images, labels = batches[0]
    assert images.shape == (4, 64, 64, 3) and images.dtype == tf.float32
    assert labels["boxes"].shape == (4, 12, 4) and labels["classes"].shape == (4, 12)
    valid = labels["classes"].numpy() >= 0
    assert valid.any()
    assert (labels["boxes"].numpy()[~valid] == 0).all()
    path = draw_batch(images, labels, tmp_path / "batch.png", data.class_names)
    from PIL import Image

    with Image.open(path) as drawn:
        assert drawn.size == (4 * 64, 64)


def test_make_dataset_without_augmentation_keeps_every_image_in_order():
    data = SyntheticShapes(num_images=5, image_size=64, seed=2)
    (images, labels), (rest, _) = list(make_dataset(data, 3, LetterboxConfig.kerascv(64)))
    assert rest.shape[0] == 2
    np.testing.assert_array_equal(images[0].numpy(), data[0]["image"].astype(np.float32))
    count = len(data[0]["boxes"])
    np.testing.assert_allclose(labels["boxes"][0, :count].numpy(), data[0]["boxes"])


def test_make_dataset_refuses_bad_input():
    with pytest.raises(ValueError, match="empty"):
        make_dataset(SyntheticShapes(num_images=0), 2)
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(SyntheticShapes(num_images=2), 0)
    with pytest.raises(ValueError, match="mosaic"):
        AugmentConfig(mosaic=2.0)
