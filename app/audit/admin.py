"""Pages: audit_admin."""

from flask import Blueprint

bp = Blueprint("audit_admin", __name__, url_prefix="/admin/audit")
