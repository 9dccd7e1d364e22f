"""smoltbot api: the REST API over PostgreSQL for operators and the CLI (architecture §2)."""

from smoltbot_api.app import create_app, create_app_from_env
from smoltbot_api.settings import ApiSettings, load_api_settings

__all__ = ["ApiSettings", "create_app", "create_app_from_env", "load_api_settings"]
