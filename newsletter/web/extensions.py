"""Flask extensions, created once here and bound to an app in create_app."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect

csrf = CSRFProtect()
# Storage and limits come from the app config in create_app.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
