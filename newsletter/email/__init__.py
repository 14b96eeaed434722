"""Emails: templates (templates.py), the confirmation email (confirmation.py) and the daily digest,
planned from sections (layout.py), addressed (headers.py) and rendered (digest.py)."""
