"""``python -m smoltbot_testing.fake_upstream --host 127.0.0.1 --port N``: serve until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from smoltbot_testing.fake_upstream import FakeUpstream


async def _serve(host: str, port: int) -> None:
    fake = FakeUpstream(host, port)
    await fake.start()
    print(f"fake upstream listening on {fake.url}", file=sys.stderr, flush=True)  # noqa: T201
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m smoltbot_testing.fake_upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
