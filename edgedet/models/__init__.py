"""YOLOv8 in Keras 3: layers, detector, presets and weight importers."""
