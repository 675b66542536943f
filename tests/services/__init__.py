"""Tests of the use cases in convoflow/services."""
