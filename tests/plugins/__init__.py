"""Fixtures and helpers of the tests, by area (registered in tests/conftest.py)."""
