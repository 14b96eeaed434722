"""Where commits come from: the commit record every source yields, the CommitSource protocol,
GitHub's REST API (github.py), local git repositories (git.py) and the router that picks one."""
