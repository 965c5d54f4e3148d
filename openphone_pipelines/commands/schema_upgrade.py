"""Apply the app database's migrations (`openphone-pipelines db upgrade`)."""

from __future__ import annotations

import argparse

from openphone_pipelines.settings import load_settings
from openphone_pipelines.store.db import upgrade


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["upgrade"])
    parser.add_argument("--url", help="SQLAlchemy URL (default: DATABASE_URL)")


def run(args: argparse.Namespace) -> int:
    upgrade(args.url or load_settings().require_database_url())
    print("app database is at the latest migration")
    return 0
