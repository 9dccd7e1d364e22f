"""``python -m smoltbot_verifier``: traces -> verdicts (AAP verification, AIP checkpoints)."""

from __future__ import annotations

import asyncio

from smoltbot_config import load_settings_or_exit
from smoltbot_logging import configure

from smoltbot_verifier.settings import VerifierSettings
from smoltbot_verifier.worker import SERVICE, run


def main() -> None:
    # Exits 2 on a bad variable, including an LLM backend without its URL, key or model.
    settings = load_settings_or_exit(VerifierSettings, SERVICE)
    configure(SERVICE, settings.log_level)
    asyncio.run(run(settings))  # builds the configured analyzer and closes it on the way out


if __name__ == "__main__":
    main()
