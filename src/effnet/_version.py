"""effnet's version, in a module that imports nothing (the package root, the CLI and exported files read it)."""

__version__ = "0.1.0"
