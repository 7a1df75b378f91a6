"""Reads over the views, one module per question; the API and the dashboard call these."""
