"""Subcommands of the effnet CLI, one module each (see effnet.cli)."""
