"""Developer tooling that reads the device core on purpose: the .mpy build and flashing, the
unix board, the MicroPython runner for benchmarks, the core check and the diagrams. The
runtime host tools (lci-tool, the link, keys, tokens and codes) never import from here."""
