"""edgedet.calibration (installed from the top-level `calibration/` folder)."""
