"""Pages: plans_admin."""

from flask import Blueprint

bp = Blueprint("plans_admin", __name__, url_prefix="/admin/plans")
