"""Helpers that build the real services and processes the tests talk to."""
