"""Registers the shared fixtures (``smoltbot_testing.pytest_plugin``) for every suite.

pytest loads this file before any suite's conftest, for whatever paths it is given; the plugin's
docstring lists what it provides.
"""

pytest_plugins = ["smoltbot_testing.pytest_plugin"]
