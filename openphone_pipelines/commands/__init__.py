"""Subcommands of `openphone-pipelines`: each module has `add_arguments(parser)` and `run(args) -> int`."""
