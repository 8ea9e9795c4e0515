"""Pages: auth_admin."""

from flask import Blueprint

bp = Blueprint("auth_admin", __name__, url_prefix="/admin/staff")
