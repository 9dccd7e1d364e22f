"""JSON lines with the event id bound by the handler, extras as fields, secrets not invented."""

from __future__ import annotations

import io
import json
import logging

from smoltbot_logging import JsonFormatter, bind_event, current_event_id


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("smoltbot-test"))
    logger = logging.getLogger(f"t{id(stream)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_inside_bind_event_carries_the_event_id() -> None:
    logger, stream = capture()
    logger.info("before")
    with bind_event("ev-1"):
        assert current_event_id() == "ev-1"
        logger.info("during", extra={"stream": "exchanges", "n": 3})
        with bind_event("ev-2"):
            logger.warning("nested")
        logger.info("back")
    logger.info("after")
    out = lines(stream)
    assert [line.get("event_id") for line in out] == [None, "ev-1", "ev-2", "ev-1", None]
    assert out[1]["stream"] == "exchanges"
    assert out[1]["n"] == 3
    assert out[1]["service"] == "smoltbot-test"
    assert out[2]["level"] == "warning"
    assert str(out[0]["timestamp"]).endswith("Z")


def test_exceptions_are_one_json_line() -> None:
    logger, stream = capture()
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = lines(stream)
    assert "ValueError: boom" in str(line["exc"])
