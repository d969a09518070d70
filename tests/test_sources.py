"""The one image source: every kind of input, sampling, unreadable files, image checks."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from edgedet.calibration.data import calibration_data
from edgedet.images import ImageError
from edgedet.sources import ImageSource, SourceError, check_batch, check_image, sample_indices

# Calibration sets and cache keys computed by the code BEFORE `edgedet.sources`
# existed (calibration/data.py at 11900b6). A change here re-keys every
# calibration cache users have: only with a reason.
PINNED = {
    "folder": (["calib/img_04.bmp", "calib/img_05.bmp", "calib/img_07.bmp"], "folder 'calib'",
               "961d527b7b5385e8e0ce24cf320ffa26f4701bdd3ced375dcc6eb442e0cc55b7"),
    "synthetic": (["synthetic[train:1:0]", "synthetic[train:1:1]", "synthetic[train:1:2]",
                   "synthetic[train:1:5]"], "synthetic:shapes?n=10&seed=1&size=32",
                  "d72a18ab94ff5563c88308d962595612451f4e0231f47775ee3c6089eb2feab9"),
    "arrays": (["array[1]", "array[2]"], "arrays",
               "a554530b6fbe89bf9426c13a7d7e4f7b97499b2f119b7ca19a1fd500c88cdd96"),
    "default": (["synthetic[train:0:3821]", "synthetic[train:0:5102]"],
                "synthetic:shapes?n=6000&seed=0&size=224",
                "5979cb342fbae5d283625ae2f0c34dc0aaa2ca4ad516e9f54253279af7901b1f"),
}


def _bmp_folder(folder, count, seed=0):
    """`count` small BMP files (uncompressed: the bytes never depend on a zlib version)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for i in range(count):
        array = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        path = folder / f"img_{i:02d}.bmp"
        Image.fromarray(array).save(path)
        stamp = 1_700_000_000_000_000_000 + i
        os.utime(path, ns=(stamp, stamp))
        arrays.append(array)
    return arrays


def _calibration(source, size, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = calibration_data(source, size=size, seed=seed)
    return [name for name, _ in data.items], data.source, data.key()


def test_calibration_sets_and_keys_are_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _bmp_folder(tmp_path / "calib", 8)
    assert _calibration("calib", size=3, seed=7) == PINNED["folder"]
    assert _calibration("synthetic:shapes?n=10&seed=1&size=32", size=4, seed=3) == \
        PINNED["synthetic"]
    assert _calibration([np.zeros((4, 4, 3), np.uint8)] * 5, size=2, seed=1) == PINNED["arrays"]
    assert _calibration(np.zeros((5, 4, 4, 3), np.uint8), size=2, seed=1) == PINNED["arrays"]
    assert _calibration(None, size=2) == PINNED["default"]


def test_calibration_dataset_folder_sample_is_unchanged(tmp_path, monkeypatch):
    from edgedet.data import load_dataset

    monkeypatch.chdir(tmp_path)
    load_dataset("synthetic:shapes?n=6&seed=2&size=32").write("coco", format="coco")
    names, label, _ = _calibration("coco", size=3, seed=0)
    assert names == [f"shapes_train_2_00000{i}.png" for i in (3, 4, 5)]
    assert label == "dataset 'coco'"


# The source itself.


def test_folder_names_are_relative_sorted_and_not_recursive(tmp_path):
    arrays = _bmp_folder(tmp_path / "imgs", 3)
    (tmp_path / "imgs" / ".hidden.bmp").write_bytes(b"x")
    _bmp_folder(tmp_path / "imgs" / "sub", 1)
    source = ImageSource(tmp_path / "imgs")
    assert source.names == ["img_00.bmp", "img_01.bmp", "img_02.bmp"]
    assert source.root == tmp_path / "imgs" and source.dataset is None
    assert [str(p) for p in source.paths] == [str(tmp_path / "imgs" / n) for n in source.names]
    for (_, image), array in zip(source, arrays):
        np.testing.assert_array_equal(image, array)
    by_path = ImageSource(str(tmp_path / "imgs"), naming="path")
    assert by_path.names == [str(tmp_path / "imgs" / n) for n in source.names]


def test_files_and_globs_keep_their_order(tmp_path):
    _bmp_folder(tmp_path, 3)
    files = [tmp_path / "img_02.bmp", tmp_path / "img_00.bmp"]
    assert ImageSource(files).names == ["img_02.bmp", "img_00.bmp"]
    assert ImageSource(str(files[0])).names == ["img_02.bmp"]
    assert ImageSource(str(tmp_path / "img_0[12].bmp")).names == ["img_01.bmp", "img_02.bmp"]
    with pytest.raises(SourceError, match=r"No image files match '.*nothing\*\.png'"):
        ImageSource(str(tmp_path / "nothing*.png"))
    with pytest.raises(ImageError, match=r"not found: '.*nope\.png'"):
        ImageSource(str(tmp_path / "nope.png"))
    with pytest.raises(SourceError, match="received int"):
        ImageSource(3)


def test_synthetic_spec_has_names_labels_and_its_split():
    source = ImageSource("synthetic:shapes?n=3&seed=5&size=24", split="parity")
    assert source.names == [f"shapes_parity_5_00000{i}.png" for i in range(3)]
    image = source.load(2)
    assert image.shape == (24, 24, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, source.dataset[2]["image"])
    labels = source.labels(2)
    assert labels["boxes"].shape[1] == 4 and len(labels["classes"]) == len(labels["boxes"])
    assert source.class_names == tuple(source.dataset.class_names)
    assert (ImageSource("synthetic:shapes?n=3&seed=5&size=24").names[0]
            == "shapes_train_5_000000.png")
    with pytest.raises(ValueError, match="synthetic:shapez"):
        ImageSource("synthetic:shapez")


def test_dataset_paths_open_only_when_asked(tmp_path):
    from edgedet.data import load_dataset

    load_dataset("synthetic:shapes?n=4&seed=2&size=32").write(tmp_path / "coco", format="coco")
    with pytest.raises(ImageError, match="No images found"):
        ImageSource(tmp_path / "coco")  # A folder of sub-folders is not a folder of images.
    source = ImageSource(tmp_path / "coco", datasets=True)
    assert len(source) == 4 and source.label == f"dataset '{tmp_path / 'coco'}'"
    assert source.names == [f"shapes_train_2_00000{i}.png" for i in range(4)]
    assert source.load(1).shape == (32, 32, 3) and source.labels(1)["boxes"].shape[1] == 4
    # Not a dataset, but images in sub-folders: read with them.
    _bmp_folder(tmp_path / "nested" / "a", 2)
    nested = ImageSource(tmp_path / "nested", datasets=True)
    assert nested.names == ["a/img_00.bmp", "a/img_01.bmp"] and "(recursive)" in nested.label
    (tmp_path / "bare").mkdir()
    with pytest.raises(SourceError, match="'.*bare' is empty"):
        ImageSource(tmp_path / "bare", datasets=True)


def test_arrays_are_named_and_checked():
    a, b = np.zeros((4, 5, 3), np.uint8), np.ones((6, 2, 3), np.uint8)
    assert ImageSource([a, b]).names == ["image_0000", "image_0001"]
    named = ImageSource([("left", a), ("right", b)])
    assert named.names == ["left", "right"] and named.load(1) is not None
    assert [n for n, _ in ImageSource(np.stack([a, a]))] == ["image_0000", "image_0001"]
    with pytest.raises(SourceError, match=r"image 'image_0001' with dtype uint8.*float32"):
        ImageSource([a, b.astype(np.float32)])


def test_unreadable_files_are_reported_by_name_not_raised(tmp_path):
    _bmp_folder(tmp_path, 2)
    (tmp_path / "img_01b.bmp").write_bytes(b"BM not really")
    source = ImageSource(tmp_path)
    assert [name for name, _ in source] == ["img_00.bmp", "img_01.bmp"]
    assert [f["image"] for f in source.failures] == ["img_01b.bmp"]
    assert "Cannot read" in source.failures[0]["reason"]
    with pytest.raises(ImageError, match="img_01b.bmp"):
        source.load(2)
    dropped = source.drop_unreadable()
    assert [f["image"] for f in dropped] == ["img_01b.bmp"]
    assert source.names == ["img_00.bmp", "img_01.bmp"] and source.dropped == {"img_01b.bmp"}
    broken = tmp_path / "only"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"\x89PNG cut")
    with pytest.raises(SourceError, match="None of the 1 images can be read: x.png"):
        ImageSource(broken).drop_unreadable()


def test_sample_is_deterministic_and_the_one_rule(tmp_path):
    from edgedet.data import load_dataset, sample

    source = ImageSource("synthetic:shapes?n=20&seed=0&size=16")
    first, again, other = source.sample(7, seed=4), source.sample(7, seed=4), source.sample(7, 5)
    assert first.names == again.names != other.names
    expected = sorted(np.random.default_rng(4).choice(20, size=7, replace=False).tolist())
    assert sample_indices(20, 7, seed=4) == expected == first.positions
    # The same subset as edgedet.data.sample draws from the dataset.
    subset = sample(load_dataset("synthetic:shapes?n=20&seed=0&size=16"), 7, seed=4)
    assert [subset.annotation(i)["file_name"] for i in range(7)] == first.names
    np.testing.assert_array_equal(first.load(3), source.load(expected[3]))
    assert source.sample(None).names == source.sample(50).names == source.names
    with pytest.raises(ValueError, match="Invalid sample size: 0"):
        source.sample(0)


@pytest.mark.parametrize("image, message", [
    ("photo.jpg", r"Expected frame 7 as a numpy uint8 array, received str"),
    (np.zeros((8, 8, 3), np.float32), r"frame 7 with dtype uint8, received dtype float32"),
    (np.zeros((8, 8), np.uint8), r"frame 7 of shape \[H, W, 3\], received shape \(8, 8\)"),
    (np.zeros((8, 8, 4), np.uint8), r"frame 7 with 3 channels .*received 4 .*\(8, 8, 4\)"),
    (np.zeros((0, 8, 3), np.uint8), r"frame 7 with height and width between 1 and"),
])
def test_check_image_names_the_image_and_what_it_received(image, message):
    with pytest.raises(ValueError, match=message):
        check_image(image, "frame 7")

    class Custom(ValueError):
        pass

    with pytest.raises(Custom):
        check_image(image, "frame 7", Custom)


def test_check_image_returns_a_contiguous_array_and_check_batch_wants_four_axes():
    view = np.zeros((6, 8, 3), np.uint8)[:, ::2]
    checked = check_image(view)
    assert checked.flags.c_contiguous and checked.shape == (6, 4, 3)
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\].*image\[None\]"):
        check_batch(np.zeros((4, 4, 3), np.uint8))
    assert check_batch(np.zeros((2, 4, 4, 3), np.uint8)).shape == (2, 4, 4, 3)


def test_sources_do_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    _bmp_folder(tmp_path / "imgs", 2)
    code = ("import sys; from edgedet.sources import ImageSource; "
            f"s = ImageSource({str(tmp_path / 'imgs')!r}); list(s); "
            "list(ImageSource('synthetic:shapes?n=2&size=16')); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
