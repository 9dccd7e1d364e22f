"""Test tooling: fake LLM providers as real HTTP servers on loopback, and small process helpers.

Imported only from tests and from ``smoltbot up --fake-upstream``; never from service code.
"""

from smoltbot_testing.fake_upstream import FakeUpstream, RecordedResponse
from smoltbot_testing.net import free_port, wait_for_http

__all__ = ["FakeUpstream", "RecordedResponse", "free_port", "wait_for_http"]
