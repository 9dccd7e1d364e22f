"""``python -m smoltbot_verifier``: traces -> verdicts (AAP verification, AIP checkpoints)."""

from __future__ import annotations

import asyncio

from smoltbot_analysis import make_analyzer
from smoltbot_config import load_settings_or_exit
from smoltbot_logging import configure

from smoltbot_verifier.settings import VerifierSettings
from smoltbot_verifier.worker import SERVICE, run


def main() -> None:
    # Exits 2 on a bad variable, including a backend that is named but not implemented yet.
    settings = load_settings_or_exit(VerifierSettings, SERVICE)
    analyzer = make_analyzer(settings.analyzer_backend)
    configure(SERVICE, settings.log_level)
    asyncio.run(run(settings, analyzer))


if __name__ == "__main__":
    main()
