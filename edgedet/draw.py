"""Drawing detections on images (annotated `predict` output, parity galleries)."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Ultralytics' palette: distinct, readable on photos.
PALETTE = (
    "#FF3838", "#FF9D97", "#FF701F", "#FFB21D", "#CFD231", "#48F90A", "#92CC17",
    "#3DDB86", "#1A9334", "#00D4BB", "#2C99A8", "#00C2FF", "#344593", "#6473FF",
    "#0018EC", "#8438FF", "#520085", "#CB38FF", "#FF95C8", "#FF37C7",
)


def class_color(class_id):
    """A stable colour for a class id."""
    return PALETTE[int(class_id) % len(PALETTE)]


def draw_detections(image, detections, class_names=(), color=None, width=None):
    """Draws labelled boxes on a copy of an image.

    Args:
        image: uint8 array `[H, W, 3]` or a PIL image.
        detections: `edgedet.detections.Detections` for this image.
        class_names: sequence of str. Names for class ids; ids without a
            name are drawn as numbers. Defaults to `()`.
        color: str or None. One colour for every box; by default each class
            has its own colour.
        width: int or None. Line width; defaults to a width that scales
            with the image size.

    Returns:
        A new RGB `PIL.Image.Image`.
    """
    canvas = (image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image)))
    canvas = canvas.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    side = max(canvas.size)
    width = width or max(1, round(side / 320))
    font = ImageFont.load_default(size=max(10, round(side / 50)))
    xyxy = detections.to_format("xyxy", image_shape=(canvas.height, canvas.width)).boxes
    for box, score, class_id in zip(xyxy, detections.confidence, detections.classes):
        box_color = color or class_color(class_id)
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=box_color, width=width)
        name = class_names[class_id] if 0 <= class_id < len(class_names) else str(int(class_id))
        label = f"{name} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label, font=font)
        text_h = bottom - top
        y_text = y1 - text_h - 2 if y1 - text_h - 2 >= 0 else y1
        draw.rectangle([x1, y_text, x1 + (right - left) + 4, y_text + text_h + 2], fill=box_color)
        draw.text((x1 + 2, y_text), label, fill="white", font=font)
    return canvas
