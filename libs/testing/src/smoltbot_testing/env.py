"""Where the tests find the machine's shared Redis and PostgreSQL: one default and one environment
variable each. Every suite, fixture and helper reads these two constants from here."""

from __future__ import annotations

import os

REDIS_URL_VAR = "SMOLTBOT_TEST_REDIS_URL"
ADMIN_URL_VAR = "SMOLTBOT_TEST_PG_ADMIN_URL"

#: The shared Redis; tests use it only under a private key prefix (``keys.unique_prefix``).
REDIS_URL = os.environ.get(REDIS_URL_VAR, "redis://127.0.0.1:6379/0")
#: A superuser connection to the shared PostgreSQL; tests only create and drop their own databases.
ADMIN_URL = os.environ.get(ADMIN_URL_VAR, "postgresql://postgres@127.0.0.1:5432/postgres")
