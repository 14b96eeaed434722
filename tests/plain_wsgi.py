"""A WSGI app that is not ours and configures no logging: gunicorn's logger class alone must mask tokens."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
