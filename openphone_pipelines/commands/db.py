"""Apply the app database's migrations (`openphone-pipelines db upgrade`)."""

from __future__ import annotations

import argparse

from openphone_pipelines.store.db import upgrade


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["upgrade"])
    parser.add_argument("--url", help="SQLAlchemy URL (default: DATABASE_URL)")


def run(args: argparse.Namespace) -> int:
    from openphone_pipelines.settings import database_url

    upgrade(args.url or database_url())
    print("app database is at the latest migration")
    return 0
