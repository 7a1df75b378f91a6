"""Shared by every part: settings, database access, logins, errors, tokens, ids, JSON in and out."""
