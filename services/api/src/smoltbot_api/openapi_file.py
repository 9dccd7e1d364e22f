"""``python -m smoltbot_api.openapi_file PATH``: write the api's OpenAPI document (``make
openapi`` writes ``contracts/openapi/api.json``); ``--check`` only compares and exits 1 when the
file is out of date. The app is built with placeholder settings: nothing is connected.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litestar import Litestar

from smoltbot_api.app import create_app
from smoltbot_api.openapi import render_openapi
from smoltbot_api.settings import ApiSettings

__all__ = ["document", "main"]


def _offline_app() -> Litestar:
    """The app with placeholder settings: building it connects nothing."""
    settings = ApiSettings(
        database_url="postgresql://openapi@localhost/openapi",
        admin_token="openapi-document-only",  # noqa: S106 (never used to answer a request)
    )
    return create_app(settings)


def document() -> bytes:
    """The document as the checked-in copy holds it."""
    return render_openapi(_offline_app())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smoltbot_api.openapi_file", description=__doc__
    )
    parser.add_argument("path", type=Path, help="where the document lives, e.g. contracts/...")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    args = parser.parse_args(argv)
    rendered = document()
    if args.check:
        current = args.path.read_bytes() if args.path.exists() else b""
        if current != rendered:
            sys.stderr.write(f"{args.path} is out of date: run `make openapi`\n")
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_bytes(rendered)
    sys.stdout.write(f"wrote {args.path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
