"""The keys table lives in core (core.auth looks keys up without importing this package)."""

from app.core.api_keys import ApiKey

__all__ = ["ApiKey"]
