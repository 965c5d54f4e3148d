"""`openphone-pipelines`: operator commands (migrations, headless backfill, replay)."""

from __future__ import annotations

import argparse
import sys

from openphone_pipelines.commands import backfill, replay, schema_upgrade
from openphone_pipelines.settings import ConfigError

COMMANDS = {"db": schema_upgrade, "backfill": backfill, "replay": replay}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openphone-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
