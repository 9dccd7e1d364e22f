"""Resolve the smoltbot charts' ``file://`` dependencies offline, in order, and optionally package.

Helm's ``dependency update`` does not recurse: the library goes into every service chart first,
then the service charts (with the library inside) and the library into the umbrella. Nothing here
needs a network or a helm binary (helm-python-sdk bundles Helm's Go SDK).

    uv run python charts/build.py                 # charts/*/charts/*.tgz (git-ignored)
    uv run python charts/build.py --package dist  # and dist/smoltbot-<version>.tgz

Equivalent with a helm binary:

    for c in charts/services/*; do helm dependency update "$c"; done
    helm dependency update charts/smoltbot
"""

from __future__ import annotations

import argparse
from pathlib import Path

import helm_python

CHARTS = Path(__file__).resolve().parent
SERVICES = ("gateway", "observer", "verifier", "persister", "api", "notifier")


def build(root: Path = CHARTS) -> Path:
    """Build every chart's ``charts/`` under ``root`` (a ``charts`` tree); returns the umbrella."""
    for service in SERVICES:
        helm_python.dependency_update(root / "services" / service)
    umbrella = root / "smoltbot"
    helm_python.dependency_update(umbrella)
    return umbrella


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", metavar="DIR", type=Path, help="write the umbrella .tgz here")
    args = parser.parse_args()
    umbrella = build()
    print(f"dependencies built under {umbrella.parent}")  # noqa: T201
    if args.package:
        args.package.mkdir(parents=True, exist_ok=True)
        print(helm_python.package(umbrella, destination=args.package))  # noqa: T201


if __name__ == "__main__":
    main()
