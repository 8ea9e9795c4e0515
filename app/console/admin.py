"""Pages: console."""

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/admin")
