"""tracestyle: reasoning-trace data curation and trace-style ablations."""

__version__ = "0.1.0"
