"""edgedet.runtimes (installed from the top-level `runtimes/` folder)."""
