"""``python -m smoltbot_verifier``: traces -> verdicts (AAP verification, AIP checkpoints)."""

from __future__ import annotations

import asyncio
import sys

from smoltbot_analysis import make_analyzer
from smoltbot_config import load_settings_or_exit
from smoltbot_logging import configure

from smoltbot_verifier.settings import VerifierSettings
from smoltbot_verifier.worker import SERVICE, run


def main() -> None:
    settings = load_settings_or_exit(VerifierSettings, SERVICE)
    try:
        analyzer = make_analyzer(settings.analyzer_backend)
    except ValueError as exc:  # a backend that is named but not implemented yet: bad config
        print(f"smoltbot-{SERVICE}: invalid configuration: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    configure(SERVICE, settings.log_level)
    asyncio.run(run(settings, analyzer))


if __name__ == "__main__":
    main()
