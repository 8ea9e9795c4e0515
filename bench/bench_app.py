"""The app as benchmarks serve it: the real app plus one bare JSON route to compare against."""

from flask import jsonify

from app import create_app
from app.extensions import limiter
from app.security import public

app = create_app()


@limiter.exempt  # the baseline is a route with no limit at all (pages otherwise count per client IP)
@public
def bare():
    """Does nothing: the baseline of what a Flask route costs here."""
    return jsonify({"ok": True})


app.add_url_rule("/bench/bare", "bench_bare", bare)
