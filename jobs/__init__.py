"""RQ entry points and the daily schedule. Jobs take ids, load rows, call one service, commit."""
