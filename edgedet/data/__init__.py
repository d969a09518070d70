"""Datasets: COCO JSON, YOLO txt and VOC XML readers, and the synthetic shapes generator."""
