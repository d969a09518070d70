"""A new model family is its own module plus one row: a toy family, defined here.

The toy family `toy_family` is a three-level detector with a `Detect`-shaped
head of `reg_max` 4 (not YOLOv8's 16), and its own decode, which records
that the end-to-end graph called it. Its module is written from this file
into `tmp_path` (the family row names its class and hooks as
`"module:attr"` strings), then one `ModelFamily` row is registered. Export
(SavedModel, ONNX, TFLite at FP32), parity, `describe_model`, a
`.keras` round trip and a one-epoch `train` then run on it with no other
edit to edgedet.
"""

import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from edgedet.models import families  # noqa: E402

TOY_MODULE = "edgedet_toy_family"
TOY_SOURCE = textwrap.dedent('''
    """A toy model family: three strided convs and a Detect-shaped head, reg_max 4."""

    import keras

    from edgedet.config import InferenceConfig, LetterboxConfig
    from edgedet.decode import decode as dfl_decode

    REG_MAX = 4
    DECODE_CALLS = []
    PRESETS = {"toy_p": {"width": 8, "letterbox": {"size": 64, "pad_position": "center",
                                                   "pad_value": 114}}}


    def preset_names():
        return list(PRESETS)


    def get_preset(name):
        return dict(PRESETS[name])


    def toy_decode(raw_boxes, raw_classes, image_size, strides, reg_max, classes_are_logits=True):
        DECODE_CALLS.append(reg_max)
        return dfl_decode(raw_boxes, raw_classes, image_size, strides, reg_max,
                          classes_are_logits=classes_are_logits)


    def describe_layout(model):
        return {"width": model.width, "reg_max": model.reg_max}


    @keras.saving.register_keras_serializable(package="edgedet_toy")
    class ToyDetector(keras.Model):
        def __init__(self, num_classes, width=8, class_names=None, letterbox=None,
                     bounding_box_format="xyxy", include_rescaling=True, preset=None,
                     **kwargs):
            images = keras.Input((None, None, 3), name="images")
            x = keras.layers.Rescaling(1 / 255.0, name="rescaling")(images)
            boxes, classes = [], []
            for level, stride in enumerate((8, 2, 2)):
                x = keras.layers.Conv2D(width, stride, strides=stride, activation="relu",
                                        name=f"toy_down_{level + 1}")(x)
                head = f"toy_head_{level + 1}"
                box = keras.layers.Conv2D(4 * REG_MAX, 1, name=f"{head}_box_3_conv")(x)
                cls = keras.layers.Conv2D(num_classes, 1, name=f"{head}_class_3_conv")(x)
                boxes.append(keras.layers.Reshape((-1, 4 * REG_MAX))(box))
                classes.append(keras.layers.Reshape((-1, num_classes))(cls))
            outputs = {
                "boxes": keras.layers.Concatenate(axis=1, name="boxes")(boxes),
                "classes": keras.layers.Concatenate(axis=1, name="classes")(classes),
            }
            super().__init__(inputs=images, outputs=outputs, **kwargs)
            self.num_classes = num_classes
            self.width = width
            self.class_names = tuple(class_names or [f"c{i}" for i in range(num_classes)])
            self.letterbox = LetterboxConfig.from_dict(letterbox or {"size": 64})
            self.bounding_box_format = bounding_box_format
            self.include_rescaling = include_rescaling
            self.preset = preset
            self.strides = (8, 16, 32)
            self.reg_max = REG_MAX

        def default_inference_config(self):
            return InferenceConfig(letterbox=self.letterbox,
                                   bounding_box_format=self.bounding_box_format)

        def get_config(self):
            return {"name": self.name, "num_classes": self.num_classes, "width": self.width,
                    "class_names": list(self.class_names), "letterbox": self.letterbox.to_dict(),
                    "bounding_box_format": self.bounding_box_format,
                    "include_rescaling": self.include_rescaling, "preset": self.preset}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

        @classmethod
        def from_preset(cls, name, num_classes=None, class_names=None, **overrides):
            config = get_preset(name)
            num_classes = num_classes or (len(class_names) if class_names else 80)
            config.update(num_classes=num_classes, class_names=class_names, preset=name)
            config.update(overrides)
            return cls(**config)
''')


def _row(module):
    return families.ModelFamily(
        name="toy_family",
        title="Toy",
        model_class_path=f"{TOY_MODULE}:ToyDetector",
        registered_names=("edgedet_toy>ToyDetector",),
        preset_names=module.preset_names,
        get_preset=module.get_preset,
        head_output_layers=families._head_outputs("toy_head"),
        input_layers=("rescaling",),
        decode_path=f"{TOY_MODULE}:toy_decode",
        describe_path=f"{TOY_MODULE}:describe_layout",
    )


@pytest.fixture(scope="module")
def toy(plug_in_family):
    with plug_in_family(TOY_MODULE, TOY_SOURCE, _row) as module:
        yield module


def test_the_row_is_asked_for_presets_class_and_description(toy):
    from edgedet.models import describe_model, from_preset, preset_names

    assert "toy_p" in preset_names()
    model = from_preset("toy_p", class_names=["a", "b"])
    assert type(model).__name__ == "ToyDetector"
    assert families.family_of_model(model).name == "toy_family"
    info = describe_model(model)
    assert info["family"] == "toy_family" and info["layout"] == {"width": 8, "reg_max": 4}
    from edgedet.train.trainer import init_head_biases

    init_head_biases(model)
    assert np.all(model.get_layer("toy_head_1_box_3_conv").bias.numpy() == 1.0)
    assert np.all(model.get_layer("toy_head_1_class_3_conv").bias.numpy() < -3)


def test_a_toy_family_exports_passes_parity_and_trains(toy, tmp_path, recwarn):
    from edgedet.export import export
    from edgedet.models import from_preset, load_model
    from edgedet.parity import run_parity
    from edgedet.train import train

    model = from_preset("toy_p", class_names=["a", "b"])
    toy.DECODE_CALLS.clear()
    results = export(model, ["saved_model", "onnx", "tflite"], tmp_path / "out", stem="toy")
    assert toy.DECODE_CALLS and set(toy.DECODE_CALLS) == {4}  # the family's decode, reg_max 4
    paths = [str(r.path) for r in results]
    assert len(paths) == 3
    result = run_parity(model, paths, "synthetic:shapes?n=3&size=96&seed=3")
    assert result, result.summary_text()

    model.save(tmp_path / "toy.keras")
    assert type(load_model(tmp_path / "toy.keras")).__name__ == "ToyDetector"

    trained = train("synthetic:shapes?n=4&size=64&classes=square,circle&max_objects=2",
                    model="toy_p", imgsz=64, epochs=1, batch=2, out=tmp_path / "run",
                    verbose=0, plot=False, jit_compile=False)
    assert type(trained.model).__name__ == "ToyDetector"
    assert np.isfinite(trained.history[-1]["loss"])
    # train's tf.data pipeline shuffles; Keras' "shuffle=True is ignored" is not shown.
    assert not [w for w in recwarn if "shuffle" in str(w.message)]


def test_rows_are_checked_and_removed(toy):
    row = families.get_family("toy_family")
    with pytest.raises(ValueError, match="already registered"):
        families.register_family(row)
    with pytest.raises(ValueError, match="built-in"):
        families.unregister_family("yolo_v8")
