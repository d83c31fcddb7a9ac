"""End-to-end tests run the service as tests/api does: its fixtures, reused."""

from ..api.conftest import api, parties

__all__ = ["api", "parties"]
