"""Commit analysis: one result shape (result.py) for every commit, filled by an LLM (llm.py, with
prompt.py) or by heuristics (heuristic.py, bots.py), behind the Analyzer protocol (analyzer.py)."""
