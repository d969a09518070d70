"""edgedet.exporters (installed from the top-level `exporters/` folder)."""
