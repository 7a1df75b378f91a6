"""The HTTP API: create_app, the routes, their parameters and replies."""
