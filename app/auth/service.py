"""People and sessions: sign-up by invitation, staff accounts, sign-in, sign-out, sign out everywhere."""

from __future__ import annotations

from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.auth import passwords
from app.auth.models import AuthSession, User
from app.errors import Conflict, Invalid, NotFound, Unauthorized
from app.extensions import db
from app.security import Actor

LOGIN_FAILED = "Email or password is incorrect."
SEEN_WRITE_INTERVAL = 60  # seconds between last_seen_at writes for one session


def normalize_email(raw: str, field: str = "email") -> str:
    """Validate syntax and normalise (whole address lowercased) so case can't make a second account."""
    raw = (raw or "").strip()
    if not raw:
        raise Invalid(errors={field: "Enter an email address."})
    if len(raw) > 254:
        raise Invalid(errors={field: "An email address has at most 254 characters."})
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise Invalid(errors={field: str(exc)}) from None
    return info.normalized.lower()


def find_user_by_email(email: str) -> User | None:
    """The user with this (normalised) email, if any."""
    return db.session.scalar(select(User).where(User.email == email))


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if len(name) > 120:
        raise Invalid(errors={"name": "A name has at most 120 characters."})
    return name


def _check_password(password: str) -> None:
    error = passwords.policy_error(password or "")
    if error:
        raise Invalid(errors={"password": error})


def build_user(email: str, name: str, password: str | None, *, is_staff: bool = False,
               password_hash: str | None = None) -> User:
    """A new, validated user added to the session (not committed). Raises Conflict on a taken email.

    `password_hash` lets bulk seeding reuse one argon2 hash instead of paying for one per user.
    """
    email = normalize_email(email)
    name = _check_name(name)
    if password is not None:
        _check_password(password)
    if find_user_by_email(email) is not None:
        raise Conflict("An account with this email already exists.", errors={"email": "This email is taken."})
    if password_hash is None and password:
        password_hash = passwords.hash_password(password)
    user = User(email=email, name=name, is_staff=is_staff, password_hash=password_hash)
    db.session.add(user)
    db.session.flush()
    return user


def create_staff(actor: Actor, email: str, name: str, password: str) -> User:
    """Create an operator staff account."""
    user = build_user(email, name, password, is_staff=True)
    audit.record(actor, "staff.created", targets=[Target("user", user.id, user.email)],
                 changes={"email": [None, user.email], "is_staff": [None, True]})
    db.session.commit()
    return user


def set_staff_disabled(actor: Actor, user_id: str, disabled: bool) -> User:
    """Disable (and sign out) or re-enable a staff account; nobody disables themself."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_staff:
        raise NotFound("No such staff member.")
    if user.id == actor.id and disabled:
        raise Invalid("You cannot disable your own account.")
    old = user.disabled_at
    user.disabled_at = clock.now() if disabled else None
    if disabled:
        _end_all_sessions(user)
    audit.record(actor, "staff.disabled" if disabled else "staff.enabled",
                 targets=[Target("user", user.id, user.email)],
                 changes={"disabled_at": [old, user.disabled_at]}, severity="warning" if disabled else "info")
    db.session.commit()
    return user


def authenticate(actor: Actor, email: str, password: str, *, staff: bool) -> User:
    """Check credentials; every failure says the same thing and is audited as a warning."""
    try:
        normalized = normalize_email(email)
    except Invalid:
        normalized = None
    user = find_user_by_email(normalized) if normalized else None
    ok = passwords.verify_password(user.password_hash if user else None, password or "")
    if not ok or user is None or not user.is_active or (staff and not user.is_staff):
        # The actor is whoever tried: the account when it exists, else the email that was typed.
        attempted = Actor(type="staff" if user is not None and user.is_staff else "user",
                          id=user.id if user else None, display=(normalized or email or "")[:254],
                          ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)
        audit.record_failure(attempted, "auth.login_failed", metadata={"staff_login": staff,
                                                                        "account_exists": user is not None})
        raise Unauthorized(LOGIN_FAILED)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


def start_session(actor: Actor, user: User, second_factor: str | None = None) -> AuthSession:
    """A new server-side session row (a new id at every sign-in: session rotation). Signing in counts as a
    fresh confirmation for re-authentication; `second_factor` ('totp' or 'recovery_code') marks the
    session as having proven one."""
    now = clock.now()
    session = AuthSession(user_id=user.id, user_version=user.session_version, created_at=now, last_seen_at=now,
                          ip=actor.ip, user_agent=actor.user_agent, reauth_at=now,
                          mfa_at=now if second_factor else None)
    user.last_login_at = now
    db.session.add(session)
    db.session.flush()
    signed_in = Actor(type="staff" if user.is_staff else "user", id=user.id, display=user.email,
                      ip=actor.ip, user_agent=actor.user_agent, request_id=actor.request_id)
    audit.record(signed_in, "auth.login", targets=[Target("user", user.id, user.email)],
                 metadata={"session": session.id, "second_factor": second_factor})
    db.session.commit()
    return session


def load_session(session_id: str) -> User | None:
    """The user of a live session, or None when revoked, signed out everywhere, idle or too old."""
    session = db.session.get(AuthSession, session_id)
    if session is None or session.revoked_at is not None:
        return None
    user = session.user
    now = clock.now()
    config = current_app.config
    if (
        not user.is_active
        or session.user_version != user.session_version
        or now - session.last_seen_at > config["SESSION_IDLE_TIMEOUT"]
        or now - session.created_at > config["SESSION_ABSOLUTE_TIMEOUT"]
    ):
        return None
    if (now - session.last_seen_at).total_seconds() > SEEN_WRITE_INTERVAL:
        db.session.execute(update(AuthSession).where(AuthSession.id == session.id).values(last_seen_at=now))
        db.session.commit()
    user.session_id = session.id
    user.auth_session = session
    return user


def end_session(actor: Actor, session_id: str) -> None:
    """Sign out: the session id stops working even if its cookie is replayed."""
    session = db.session.get(AuthSession, session_id)
    if session is None or session.revoked_at is not None:
        return
    session.revoked_at = clock.now()
    audit.record(actor, "auth.logout", targets=[Target("user", session.user_id, actor.display)],
                 metadata={"session": session.id})
    db.session.commit()


def _end_all_sessions(user: User) -> int:
    user.session_version += 1
    result = db.session.execute(
        update(AuthSession).where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return result.rowcount or 0


def sign_out_everywhere(actor: Actor, user_id: str) -> int:
    """End every session of a user (the user themself, or staff for them). Returns how many ended."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    ended = _end_all_sessions(user)
    audit.record(actor, "auth.sessions_revoked", targets=[Target("user", user.id, user.email)],
                 metadata={"sessions": ended}, severity="warning")
    db.session.commit()
    return ended


def change_password(actor: Actor, user: User, current: str, new: str) -> None:
    """Change a password (the current one is required) and end every other session."""
    if not passwords.verify_password(user.password_hash, current or ""):
        raise Invalid(errors={"current_password": "The current password is not correct."})
    _check_password(new)
    user.password_hash = passwords.hash_password(new)
    keep = getattr(user, "session_id", None)
    user.session_version += 1
    db.session.execute(
        update(AuthSession).where(AuthSession.user_id == user.id, AuthSession.id != keep,
                                  AuthSession.revoked_at.is_(None)).values(revoked_at=clock.now())
    )
    if keep:  # the current session follows the new version
        db.session.execute(update(AuthSession).where(AuthSession.id == keep).values(user_version=user.session_version))
    audit.record(actor, "auth.password_changed", targets=[Target("user", user.id, user.email)],
                 changes={"password": ["x", "y"]})
    db.session.commit()


def active_sessions(user_id: str) -> list[AuthSession]:
    """A user's sessions that have not been revoked, newest first."""
    user = db.session.get(User, user_id)
    return list(db.session.scalars(
        select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None),
                                  AuthSession.user_version == user.session_version)
        .order_by(AuthSession.created_at.desc()).limit(50)
    ))


def count_staff() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.is_staff.is_(True))) or 0


def prune_sessions() -> int:
    """Delete sessions revoked or past the absolute timeout more than a day ago (idempotent)."""
    from sqlalchemy import delete, or_

    cutoff = clock.now() - current_app.config["SESSION_ABSOLUTE_TIMEOUT"] - timedelta(days=1)
    result = db.session.execute(
        delete(AuthSession).where(or_(AuthSession.created_at < cutoff, AuthSession.revoked_at < cutoff))
    )
    db.session.commit()
    return result.rowcount or 0


def list_staff() -> list[User]:
    """Every operator staff account, enabled ones first, then by email."""
    return list(db.session.scalars(
        select(User).where(User.is_staff.is_(True)).order_by(User.disabled_at.is_not(None), User.email)
    ))
