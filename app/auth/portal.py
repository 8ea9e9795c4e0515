"""Pages: auth_portal."""

from flask import Blueprint

bp = Blueprint("auth_portal", __name__, url_prefix="/t/<slug>/api-keys")
