"""Daily reports: the run that makes them (run.py), the report model every output renders
(model.py, wording.py), the Markdown form (markdown.py), stored reports (store.py) and report days
(days.py)."""
