"""`openphone-pipelines`: operator commands (migrations, headless backfill, replay, local Postgres)."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommands living in their own modules under openphone_pipelines.commands; each module has
# add_arguments(parser) and run(args) -> int.
COMMAND_MODULES = {
    "backfill": "openphone_pipelines.commands.backfill",
    "replay": "openphone_pipelines.commands.replay",
}


def _db(args: argparse.Namespace) -> int:
    from openphone_pipelines.settings import database_url
    from openphone_pipelines.store.db import upgrade

    url = args.url or database_url()
    if args.action == "upgrade":
        upgrade(url)
        print("app database is at the latest migration")
    return 0


def _local_postgres(args: argparse.Namespace) -> int:
    from openphone_pipelines.localpg import project_postgres

    pg = project_postgres()
    if args.action == "start":
        pg.start()
        for name in args.create:
            pg.create_database(name)
        print(pg.url("postgres"))
    elif args.action == "stop":
        pg.stop()
    elif args.action == "url":
        print(pg.url(args.database, driver=args.driver))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openphone-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="app database migrations")
    db.add_argument("action", choices=["upgrade"])
    db.add_argument("--url", help="SQLAlchemy URL (default: DATABASE_URL)")
    db.set_defaults(func=_db)

    local = sub.add_parser("local-postgres", help="the embedded PostgreSQL used by the demo")
    local.add_argument("action", choices=["start", "stop", "url"])
    local.add_argument("--create", nargs="*", default=[], help="databases to create after start")
    local.add_argument("--database", default="postgres")
    local.add_argument("--driver", default="psycopg", choices=["psycopg", "psycopg2"])
    local.set_defaults(func=_local_postgres)

    for name, module_name in COMMAND_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        command = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from openphone_pipelines.settings import ConfigError

    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
