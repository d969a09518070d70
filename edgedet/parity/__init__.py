"""Parity: detection-level agreement of artifacts with the Keras reference."""
