"""The inbound door: POST /webhooks/stripe. Public (the signature is the authentication), CSRF-exempt
and not rate limited (app/ratelimit/pages.py), answering problem+json on refusal."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.extensions import csrf
from app.security import public
from app.webhooks import inbound, inbound_counts

bp = Blueprint("webhooks_inbound", __name__, url_prefix="/webhooks")


@bp.route("/stripe", methods=["POST"])
@public
@csrf.exempt
def stripe_events():
    """Stripe's events: 200 {"received": true} once stored (or already known), 400 if unsigned or stale."""
    request.max_content_length = current_app.config["INBOUND_WEBHOOK_MAX_BYTES"]
    try:
        payload = request.get_data(cache=False)
    except RequestEntityTooLarge:
        inbound_counts.count("stripe", "invalid")
        raise
    receipt = inbound.receive_stripe(payload, request.headers.get("Stripe-Signature"))
    return jsonify({"received": True, "duplicate": receipt.duplicate})
