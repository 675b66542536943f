"""The benchmark command: `python3 dev.py bench` (or `python -m bench`)."""
