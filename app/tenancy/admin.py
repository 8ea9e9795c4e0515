"""Pages: tenancy_admin."""

from flask import Blueprint

bp = Blueprint("tenancy_admin", __name__, url_prefix="/admin/tenants")
