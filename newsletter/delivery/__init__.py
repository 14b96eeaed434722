"""Delivery: the Mailer protocol and its backends (mailers.py) and the once-only fan-out (fanout.py)."""
