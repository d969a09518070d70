"""Tests for the synthetic shapes generator."""

import numpy as np
import pytest

from edgedet.data.synthetic import CLASSES, SyntheticShapes, from_spec


def test_same_seed_gives_byte_identical_images_in_any_order():
    a = SyntheticShapes(num_images=6, image_size=96, seed=7)
    b = SyntheticShapes(num_images=6, image_size=96, seed=7)
    backwards = [b[i] for i in reversed(range(6))][::-1]
    for first, second in zip(a, backwards):
        assert first["image"].tobytes() == second["image"].tobytes()
        np.testing.assert_array_equal(first["boxes"], second["boxes"])
        np.testing.assert_array_equal(first["classes"], second["classes"])
        assert first["file_name"] == second["file_name"]


def test_different_seeds_and_splits_give_different_images():
    base = SyntheticShapes(num_images=3, image_size=64, seed=1)
    other_seed = SyntheticShapes(num_images=3, image_size=64, seed=2)
    other_split = SyntheticShapes(num_images=3, image_size=64, seed=1, split="val")
    for i in range(3):
        assert base[i]["image"].tobytes() != other_seed[i]["image"].tobytes()
        assert base[i]["image"].tobytes() != other_split[i]["image"].tobytes()
    assert base[0]["file_name"] != other_split[0]["file_name"]


def test_sample_types_and_shapes():
    sample = SyntheticShapes(num_images=4, image_size=(48, 80), seed=0)[3]
    assert sample["image"].dtype == np.uint8 and sample["image"].shape == (48, 80, 3)
    assert sample["boxes"].dtype == np.float32 and sample["boxes"].shape[1:] == (4,)
    assert sample["classes"].dtype == np.int32
    assert len(sample["boxes"]) == len(sample["classes"])
    assert sample["image_id"] == 3


def test_boxes_are_the_exact_extent_of_each_visible_mask():
    dataset = SyntheticShapes(num_images=25, image_size=128, seed=3, max_objects=8, noise=0)
    checked = 0
    for i in range(len(dataset)):
        sample = dataset.generate(i, return_masks=True)
        masks = sample["masks"]
        assert masks.shape == (len(sample["boxes"]), 128, 128)
        # Visible masks never overlap.
        assert masks.sum(axis=0).max(initial=0) <= 1
        for mask, box in zip(masks, sample["boxes"]):
            ys, xs = np.nonzero(mask)
            expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            np.testing.assert_array_equal(box, expected)
            # Without noise, the mask is exactly the pixels painted in one colour.
            colours = sample["image"][mask]
            assert (colours == colours[0]).all()
            checked += 1
    assert checked > 40


def test_triangles_and_crosses_have_tight_boxes():
    dataset = SyntheticShapes(
        num_images=10, image_size=96, seed=11, classes=("triangle", "cross"), min_objects=1
    )
    for i in range(len(dataset)):
        sample = dataset.generate(i, return_masks=True)
        for mask, box in zip(sample["masks"], sample["boxes"]):
            x0, y0, x1, y1 = box.astype(int)
            # Every edge row and column of the box holds a pixel of the object.
            assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
            assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()
            assert mask.sum() == mask[y0:y1, x0:x1].sum()


def test_object_sizes_stay_in_range_without_occlusion():
    dataset = SyntheticShapes(
        num_images=30, image_size=160, seed=5, min_object_size=10, max_object_size=60,
        max_occlusion=0.0,
    )  # fmt: skip
    sizes = []
    for sample in dataset:
        boxes = sample["boxes"]
        sizes += np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).tolist()
    assert sizes and min(sizes) >= 10 and max(sizes) <= 60
    # The range is used, not just one end of it.
    assert min(sizes) < 20 and max(sizes) > 40


def test_default_largest_object_is_half_the_shorter_side():
    dataset = SyntheticShapes(num_images=40, image_size=(64, 128), seed=2, max_occlusion=0.0)
    assert dataset.max_object_size == 32
    extents = [np.maximum(s["boxes"][:, 2:] - s["boxes"][:, :2], 0).max(initial=0) for s in dataset]
    assert max(extents) <= 32


def test_some_images_are_empty_and_counts_respect_bounds():
    counts = [len(s["boxes"]) for s in SyntheticShapes(num_images=60, image_size=64, seed=0)]
    assert 0 in counts and max(counts) <= 6 and max(counts) >= 3
    assert all(len(s["boxes"]) == 0 for s in SyntheticShapes(5, 64, seed=0, max_objects=0))
    exact = [
        len(s["boxes"]) for s in SyntheticShapes(10, 128, seed=0, min_objects=2, max_objects=2)
    ]
    assert exact == [2] * 10


def test_variable_image_sizes_stay_in_their_ranges():
    dataset = SyntheticShapes(num_images=20, image_size=((40, 60), (70, 120)), seed=4)
    shapes = {s["image"].shape for s in dataset}
    assert len(shapes) > 5
    for h, w, c in shapes:
        assert 40 <= h <= 60 and 70 <= w <= 120 and c == 3


def test_objects_contrast_with_their_surroundings():
    dataset = SyntheticShapes(
        num_images=20, image_size=96, seed=9, min_objects=1, max_objects=1, noise=0
    )
    for i in range(len(dataset)):
        sample = dataset.generate(i, return_masks=True)
        mask = sample["masks"][0]
        ring = np.zeros_like(mask)  # Pixels 1 step outside the mask.
        ring[1:] |= mask[:-1]
        ring[:-1] |= mask[1:]
        ring[:, 1:] |= mask[:, :-1]
        ring[:, :-1] |= mask[:, 1:]
        ring &= ~mask
        image = sample["image"].astype(float)
        colour = image[mask][0]
        distance = np.linalg.norm(image[ring] - colour, axis=1)
        assert np.percentile(distance, 5) > 40, i


def test_class_subset_defines_the_ids():
    dataset = SyntheticShapes(num_images=10, image_size=64, seed=0, classes=("ring", "circle"))
    assert dataset.class_names == ("ring", "circle")
    assert all(set(s["classes"].tolist()) <= {0, 1} for s in dataset)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 8}, "image_size"),
        ({"image_size": (64, (80, 70))}, "image_size"),
        ({"classes": ("circle", "hexagon")}, "hexagon"),
        ({"min_objects": 3, "max_objects": 2}, "min_objects"),
        ({"seed": -1}, "seed"),
        ({"min_object_size": 40, "max_object_size": 20}, "min_object_size"),
        ({"max_occlusion": 1.0}, "max_occlusion"),
    ],
)
def test_invalid_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticShapes(num_images=1, **kwargs)


def test_index_out_of_range():
    dataset = SyntheticShapes(num_images=2, image_size=32)
    assert dataset[-1]["image_id"] == 1
    with pytest.raises(IndexError, match="2"):
        dataset[2]


def test_from_spec_options():
    dataset = from_spec("synthetic:shapes?n=7&seed=3&size=48x80&max_objects=2&classes=ring,cross")
    assert len(dataset) == 7 and dataset.seed == 3
    assert dataset.class_names == ("ring", "cross")
    assert dataset[0]["image"].shape == (48, 80, 3)
    assert from_spec("synthetic:shapes").class_names == CLASSES
    ranged = from_spec("synthetic:shapes?n=5&size=40-60")
    assert ranged.heights == (40, 60) and ranged.widths == (40, 60)
    assert from_spec("synthetic:shapes?n=2", split="val").split == "val"


@pytest.mark.parametrize(
    "spec, match",
    [
        ("synthetic:shape", "Did you mean 'synthetic:shapes'"),
        ("synthetic:shapes?sede=1", "Did you mean 'seed'"),
        ("synthetic:shapes?n=abc", "'abc'"),
        ("synthetic:shapes?size=1x2x3", "size"),
    ],
)
def test_from_spec_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        from_spec(spec)
