"""Pages: audit_portal."""

from flask import Blueprint

bp = Blueprint("audit_portal", __name__, url_prefix="/t/<slug>/audit")
