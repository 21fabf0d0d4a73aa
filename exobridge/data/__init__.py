"""Package data: the starter config (`starter.toml`)."""
