"""Pages: tenancy_portal."""

from flask import Blueprint

bp = Blueprint("tenancy_portal", __name__, url_prefix="/t/<slug>")
