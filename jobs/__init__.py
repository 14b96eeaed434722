"""RQ entry points and the schedule. Jobs take ids, load rows, call one service, commit."""
