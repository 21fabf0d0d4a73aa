"""Command-line layer: parse, call the core, hand results to the renderer."""
