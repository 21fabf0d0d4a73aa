"""exobridge: your Exo cluster first, cloud providers only when it cannot answer."""

__version__ = "0.1.0"
