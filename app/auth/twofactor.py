"""Two-factor sign-in (TOTP, RFC 6238) and recovery codes; re-authentication for sensitive actions.

The TOTP secret is Fernet-encrypted at rest (the webhook secrets' helper) and never logged or audited. A
code is accepted for the current 30-second step or one step either side (clock drift), and only for a
step later than the last one accepted for that person (replay protection, ASVS 2.8.4). Recovery codes
are 80 random bits shown once; only their SHA-256 is stored and each works once (ASVS 2.6.1-2.6.2).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets as std_secrets
from datetime import datetime

import pyotp
from flask import current_app
from sqlalchemy import delete, func, or_, select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.auth import passwords
from app.auth.models import AuthSession, RecoveryCode, User
from app.errors import Conflict, Forbidden, Invalid, Unauthorized
from app.extensions import db
from app.security import Actor
from app.webhooks import secrets as secret_box

ISSUER = "Tenantry"
STEP_SECONDS = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols, no 0/o/1/l: 5 bits each
WRONG_CODE = "That code is not right. Check your authenticator app's clock and try the newest code."
REPLAYED_CODE = "That code was used already. Wait for the next one."


def _person(actor: Actor, user: User) -> Actor:
    """The person themself as the actor (before a session exists, the request's actor is anonymous)."""
    return Actor(type="staff" if user.is_staff else "user", id=user.id, display=user.email,
                 ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)


def _target(user: User) -> list[Target]:
    return [Target("user", user.id, user.email)]


def _step(now: datetime | None = None) -> int:
    return int((now or clock.now()).timestamp()) // STEP_SECONDS


def normalize_code(raw: str | None) -> str:
    """A typed code without spaces or dashes, lowercased (authenticator apps show '123 456')."""
    return "".join((raw or "").split()).replace("-", "").lower()[:64]


def _is_totp(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def _secret(user: User) -> str:
    if not user.totp_secret:
        raise Conflict("Two-factor sign-in is not set up.")
    return secret_box.decrypt(user.totp_secret)


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (now, one before or one after) whose code is `code`, or None."""
    if not _is_totp(code):
        return None
    totp, now = pyotp.TOTP(secret), _step()
    for step in (now, now - 1, now + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _accept_totp(user: User, code: str) -> str:
    """'ok', 'wrong' or 'replayed'. The last accepted step moves forward atomically, so two requests racing
    with one code cannot both pass."""
    step = _matching_step(_secret(user), code)
    if step is None:
        return "wrong"
    result = db.session.execute(
        update(User).where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return "replayed"
    user.totp_last_step = step
    return "ok"


def _hash_code(code: str) -> str:
    return hashlib.sha256(b"tenantry recovery code\0" + code.encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    now, codes = clock.now(), []
    for _ in range(RECOVERY_CODES):
        raw = "".join(std_secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash_code(raw), created_at=now))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def _use_recovery_code(user: User, code: str) -> bool:
    if len(code) != 16:
        return False
    result = db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash_code(code),
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=clock.now()).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def recovery_codes_left(user_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(RecoveryCode)
                             .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))) or 0


# --- enrolment ---------------------------------------------------------------------------------------

def begin_enrolment(user: User) -> str:
    """A secret to enrol with (kept, encrypted, until confirmed or replaced); the same one on reload."""
    if user.two_factor_enabled:
        raise Conflict("Two-factor sign-in is on already.")
    if not user.totp_secret:
        user.totp_secret = secret_box.encrypt(pyotp.random_base32())
        db.session.commit()
    return _secret(user)


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (pure Python, no Pillow)."""
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2).save(out)
    svg = out.getvalue().decode()
    svg = svg[svg.index("<svg"):]
    return re.sub(r'width="[^"]*" height="[^"]*"', 'width="200" height="200"', svg, count=1)


def confirm_enrolment(actor: Actor, user: User, code: str, session_id: str | None) -> list[str]:
    """Turn 2FA on with a first code from the app; returns the recovery codes (shown once)."""
    if user.two_factor_enabled:
        raise Conflict("Two-factor sign-in is on already.")
    code = normalize_code(code)
    step = _matching_step(_secret(user), code)
    if step is None:
        audit.record_failure(_person(actor, user), "auth.2fa_enrol_failed", targets=_target(user),
                             metadata={"reason": "wrong_code"})
        raise Invalid(errors={"code": WRONG_CODE})
    now = clock.now()
    user.totp_enabled_at, user.totp_last_step = now, step
    codes = _new_recovery_codes(user)
    if session_id:  # this session has just proven the second factor
        db.session.execute(update(AuthSession).where(AuthSession.id == session_id).values(mfa_at=now, reauth_at=now))
    audit.record(_person(actor, user), "auth.2fa_enabled", targets=_target(user),
                 changes={"two_factor": [False, True]}, metadata={"recovery_codes": len(codes)})
    db.session.commit()
    return codes


def enrol_with_secret(actor: Actor, user: User, secret: str) -> None:
    """Turn 2FA on with a given secret and no confirmation code: only for the published demo account."""
    user.totp_secret = secret_box.encrypt(secret)
    user.totp_enabled_at, user.totp_last_step = clock.now(), None
    audit.record(actor, "auth.2fa_enabled", targets=_target(user), changes={"two_factor": [False, True]},
                 metadata={"recovery_codes": 0, "demo": True})
    db.session.commit()


def disable(actor: Actor, user: User, code: str) -> None:
    """Turn 2FA off (tenant users only) with a current code or an unused recovery code."""
    if user.is_staff:
        raise Forbidden("Staff accounts keep two-factor sign-in on.")
    if not user.two_factor_enabled:
        raise Conflict("Two-factor sign-in is off already.")
    method = check_second_factor(actor, user, code, purpose="disable")
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record(_person(actor, user), "auth.2fa_disabled", targets=_target(user),
                 changes={"two_factor": [True, False]}, metadata={"confirmed_with": method}, severity="warning")
    db.session.commit()


def regenerate_recovery_codes(actor: Actor, user: User) -> list[str]:
    """Replace every recovery code (the old ones stop working); the new ones are shown once."""
    if not user.two_factor_enabled:
        raise Conflict("Turn on two-factor sign-in first.")
    codes = _new_recovery_codes(user)
    audit.record(_person(actor, user), "auth.recovery_codes_regenerated", targets=_target(user),
                 metadata={"recovery_codes": len(codes)}, severity="warning")
    db.session.commit()
    return codes


# --- the second step and re-authentication ------------------------------------------------------------

def check_second_factor(actor: Actor, user: User, code: str, *, purpose: str = "login") -> str:
    """Accept a TOTP code or an unused recovery code: 'totp' or 'recovery_code'. Anything else is audited
    and raises Unauthorized. A recovery code's use is audited in the caller's transaction (not committed)."""
    code = normalize_code(code)
    if _is_totp(code):
        outcome = _accept_totp(user, code)
        if outcome == "ok":
            return "totp"
        reason, message = ("replayed_code", REPLAYED_CODE) if outcome == "replayed" else ("wrong_code", WRONG_CODE)
    elif code and _use_recovery_code(user, code):
        left = recovery_codes_left(user.id)
        audit.record(_person(actor, user), "auth.recovery_code_used", targets=_target(user),
                     metadata={"purpose": purpose, "recovery_codes_left": left}, severity="warning")
        return "recovery_code"
    else:
        reason, message = "wrong_recovery_code", "That is neither a current code nor an unused recovery code."
    db.session.rollback()
    audit.record_failure(_person(actor, user), "auth.2fa_failed", targets=_target(user),
                         metadata={"reason": reason, "purpose": purpose})
    raise Unauthorized(message)


def confirm_identity(actor: Actor, user: User, session_id: str, *, password: str = "", code: str = "",
                     code_only: bool = False) -> str:
    """Re-authentication: a password (unless code_only) or a second-factor code, within the session.
    Sets the session's reauth time (and its second-factor time when a code was used)."""
    now = clock.now()
    values: dict[str, datetime] = {"reauth_at": now}
    if normalize_code(code) and user.two_factor_enabled:
        try:
            method = check_second_factor(actor, user, code, purpose="reauth")
        except Unauthorized as exc:
            raise Invalid(errors={"code": exc.detail}) from None
        values["mfa_at"] = now
    elif code_only:
        raise Invalid(errors={"code": "Enter the code from your authenticator app."})
    elif passwords.verify_password(user.password_hash, password or ""):
        method = "password"
    else:
        audit.record_failure(_person(actor, user), "auth.reauth_failed", targets=_target(user),
                             metadata={"reason": "wrong_password"})
        raise Invalid(errors={"password": "That password is not correct."})
    db.session.execute(update(AuthSession).where(AuthSession.id == session_id).values(**values))
    audit.record(_person(actor, user), "auth.reauthenticated", targets=_target(user),
                 metadata={"session": session_id, "method": method})
    db.session.commit()
    return method


def is_recent(auth_session: AuthSession | None) -> bool:
    """Whether the session confirmed a password or code within REAUTH_WINDOW."""
    if auth_session is None or auth_session.reauth_at is None:
        return False
    return clock.now() - auth_session.reauth_at <= current_app.config["REAUTH_WINDOW"]


def staff_needs_second_factor(user: User) -> bool:
    """Staff whose session has not proven a second factor while STAFF_REQUIRE_2FA is on."""
    if not user.is_staff or not current_app.config.get("STAFF_REQUIRE_2FA", True):
        return False
    auth_session = getattr(user, "auth_session", None)
    return auth_session is None or auth_session.mfa_at is None
