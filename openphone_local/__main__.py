"""`openphone-local` (or `python -m openphone_local`): the demo and its embedded PostgreSQL.

Dev only: it needs the `local` extra, and nothing in production imports it.
"""

from __future__ import annotations

import argparse
import sys


def _postgres(args: argparse.Namespace) -> int:
    from openphone_local.localpg import project_postgres

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


def _demo(_args: argparse.Namespace) -> int:
    from openphone_local.demo import main

    return main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openphone-local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole product locally (what `make demo` runs)")
    demo.set_defaults(func=_demo)

    postgres = sub.add_parser("postgres", help="the demo's embedded PostgreSQL (in ./.local or OPENPHONE_DEMO_DIR)")
    postgres.add_argument("action", choices=["start", "stop", "url"])
    postgres.add_argument("--create", nargs="*", default=[], help="databases to create after start")
    postgres.add_argument("--database", default="postgres")
    postgres.add_argument("--driver", default="psycopg", choices=["psycopg", "psycopg2"])
    postgres.set_defaults(func=_postgres)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
