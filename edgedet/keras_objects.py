"""Makes `import edgedet` enough for `keras.saving.load_model` to find edgedet's classes.

Keras finds a saved custom object by its registered name (`edgedet>YOLOV8Detector`)
only once the module that registers it has run. Importing those modules
imports Keras and TensorFlow, which `import edgedet` must not do. So
`install()` (called by `edgedet/__init__.py`) registers them at once when
Keras is already imported, and otherwise adds a small import hook that
registers them right after `import keras` finishes, whenever that happens.

Written by hand: Keras has no plugin entry point for serializable objects,
and Python's import system offers only this (a meta path finder wrapping
keras' loader) to run code after another package is imported.
"""

import importlib.abc
import sys


def register():
    """Imports the modules that register edgedet's Keras objects; skipped off TensorFlow.

    They are the model families' classes and layers, and the training
    schedule saved with a compiled model.

    Keras on another backend cannot run edgedet's models; `import keras`
    must still work there, so nothing is registered (edgedet's own entry
    points raise `edgedet.backend.BackendError`).
    """
    keras = sys.modules["keras"]
    if keras.backend.backend() != "tensorflow":
        return
    import importlib

    from edgedet.models import families

    for family in families.families():
        for module in family.modules_to_register():
            importlib.import_module(module)
    from edgedet.train import trainer  # noqa: F401


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` with the other finders and runs `register` after it loads."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        else:
            return None
        if not hasattr(spec.loader, "exec_module"):
            return spec
        loader, finder = spec.loader, self

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                if finder in sys.meta_path:
                    sys.meta_path.remove(finder)
                try:
                    register()
                except Exception as error:  # noqa: BLE001 - never break the user's `import keras`.
                    import warnings

                    warnings.warn(f"edgedet could not register its Keras objects "
                                  f"({type(error).__name__}: {error}); load_model will not "
                                  "find edgedet's detectors until `import edgedet.models` works.",
                                  stacklevel=2)

        spec.loader = Loader()
        return spec


def install():
    """Registers edgedet's Keras objects now, or as soon as Keras is imported."""
    if "keras" in sys.modules:
        register()
    elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKeras())
