"""Subscribers: the sign-up workflow and preferences (subscriptions.py), what people may type
(validation.py), signed links (links.py) and what bounces and complaints do (suppressions.py)."""
