"""Use cases: each owns its transaction and combines the repository with the rest of the system."""
