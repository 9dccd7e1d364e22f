"""Test tooling: fake LLM providers and a fake analysis LLM as real HTTP servers on loopback,
and small process helpers.

Imported only from tests and from ``smoltbot up --fake-upstream``; never from service code. The
fixtures every suite shares are in :mod:`smoltbot_testing.pytest_plugin` (registered by the
repository's root ``conftest.py``); where the shared Redis and PostgreSQL are, in
:mod:`smoltbot_testing.env`.
"""

from smoltbot_testing.fake_analysis import FakeAnalysis
from smoltbot_testing.fake_upstream import FakeUpstream, RecordedResponse
from smoltbot_testing.net import free_port, wait_for_http

__all__ = ["FakeAnalysis", "FakeUpstream", "RecordedResponse", "free_port", "wait_for_http"]
