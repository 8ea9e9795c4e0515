"""Bare extension instances, bound to the app in create_app()."""

from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from app.db import Base
from app.ratelimit import pages as page_limits

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
# Page limits per signed-in user (else per client IP), shared by every page; login throttling adds its own
# limits in app/auth/views.py. API requests skip Flask-Limiter (a request filter in app/api).
limiter = Limiter(key_func=page_limits.subject, default_limits=[], application_limits=[page_limits.limit],
                  application_limits_exempt_when=page_limits.exempt, on_breach=page_limits.on_breach)
api = Api()
