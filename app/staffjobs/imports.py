"""Imports of tenants and of users (as members of tenants), from CSV (a header row), JSON (an array of
objects) or JSON Lines. A dry run checks every row and reports each bad one with its line number and why,
including duplicates within the file and against what exists (emails compared normalised, slugs lowercased);
the real import checks again and then writes every row in one transaction, or none.

Tenants: name (required), slug (default: from the name), country (default US), billing_email, plan (a code
or id; default free), tags (comma- or semicolon-separated in CSV, a list in JSON), owner_email (made owner,
or invited). Users: email, tenant (slug or id), role (default member): an existing person becomes a member,
anyone else is invited."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from app.errors import Invalid, ServiceError
from app.extensions import db

DATASETS = {
    "tenants": ("name", "slug", "country", "billing_email", "plan", "tags", "owner_email"),
    "users": ("email", "tenant", "role"),
}
FORMATS = ("csv", "json", "jsonl")
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000


def format_of(filename: str, declared: str = "") -> str:
    """The format a file is in: as declared, else by its extension."""
    if declared in FORMATS:
        return declared
    name = (filename or "").lower()
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    return "csv"


def parse(content: bytes, fmt: str, dataset: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs; a file that cannot be read at all raises Invalid."""
    if len(content) > MAX_BYTES:
        raise Invalid("The file is too large.", errors={"file": f"At most {MAX_BYTES // (1024 * 1024)} MB."})
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("The file is not UTF-8 text.", errors={"file": "Save it as UTF-8 (CSV or JSON)."}) from None
    if "\x00" in text:
        raise Invalid("The file holds NUL characters.", errors={"file": "Not a text file."})
    columns = DATASETS[dataset]
    rows: list[tuple[int, dict[str, Any]]] = []
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if not header:
            raise Invalid("The file is empty.", errors={"file": f"A header row: {', '.join(columns)}."})
        unknown = [h for h in header if h not in columns]
        if unknown:
            raise Invalid("The header has unknown columns.",
                          errors={"file": f"Unknown column(s) {', '.join(unknown)}; use {', '.join(columns)}."})
        reader.fieldnames = header
        for record in reader:
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in record.items() if k}))
    elif fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                rows.append((number, _object(line, number)))
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise Invalid("The file is not valid JSON.", errors={"file": f"Not valid JSON: {exc}."}) from None
        if not isinstance(data, list):
            raise Invalid("The file is not a JSON array.", errors={"file": "A JSON array of objects."})
        rows = [(number, item if isinstance(item, dict) else {"__bad__": True})
                for number, item in enumerate(data, start=1)]
    if len(rows) > MAX_ROWS:
        raise Invalid("The file has too many rows.", errors={"file": f"At most {MAX_ROWS:,} rows per import."})
    if not rows:
        raise Invalid("The file has no rows.", errors={"file": "Nothing to import."})
    return rows


def _object(line: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {"__bad__": f"Line {number} is not valid JSON."}
    return value if isinstance(value, dict) else {"__bad__": True}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _tenant_row(raw: dict[str, Any], seen: dict[str, int]) -> tuple[dict[str, Any], list[str]]:
    from app.auth.service import normalize_email
    from app.tenancy import service as tenancy_service

    problems: list[str] = []
    tags = raw.get("tags", "")
    if isinstance(tags, str):
        tags = [t for t in (p.strip() for p in tags.replace(";", ",").split(",")) if t]
    data = {"name": _text(raw.get("name")), "slug": _text(raw.get("slug")),
            "country": _text(raw.get("country")) or "US",
            "billing_email": _text(raw.get("billing_email")), "plan_id": _text(raw.get("plan")) or "free",
            "tags": tags if isinstance(tags, list) else []}
    owner = _text(raw.get("owner_email"))
    try:
        cleaned = tenancy_service.clean(data, None)
    except Invalid as exc:
        names = {"plan_id": "plan"}
        problems += [f"{names.get(field, field)}: {message}" for field, message in exc.errors.items()]
        cleaned = {}
    if owner:
        try:
            owner = normalize_email(owner, "owner_email")
        except Invalid as exc:
            problems += [f"owner_email: {message}" for message in exc.errors.values()]
    slug = cleaned.get("slug") or data["slug"].lower()
    if slug and slug in seen:
        problems.append(f"slug: {slug} is also on line {seen[slug]} of this file.")
    return {"data": {**data, "plan_id": data["plan_id"]}, "owner_email": owner, "slug": slug}, problems


def _user_row(raw: dict[str, Any], seen: dict[str, int]) -> tuple[dict[str, Any], list[str]]:
    from sqlalchemy import select

    from app.auth.service import find_user_by_email, normalize_email
    from app.security import ROLES
    from app.tenancy.models import Invitation, Membership
    from app.tenancy.queries import find_by_id_or_slug

    problems: list[str] = []
    email = _text(raw.get("email"))
    try:
        email = normalize_email(email, "email")
    except Invalid as exc:
        problems += [f"email: {message}" for message in exc.errors.values()]
        email = ""
    role = _text(raw.get("role")).lower() or "member"
    if role not in ROLES:
        problems.append(f"role: one of {', '.join(ROLES)}.")
    tenant = find_by_id_or_slug(_text(raw.get("tenant")))
    if tenant is None:
        problems.append(f"tenant: no tenant {_text(raw.get('tenant'))!r} (a slug or id)." if _text(raw.get("tenant"))
                        else "tenant: required (a slug or id).")
    elif tenant.status == "closed":
        problems.append(f"tenant: {tenant.slug} is closed.")
    key = f"{email}\n{tenant.id if tenant else ''}"
    if email and tenant is not None:
        if key in seen:
            problems.append(f"email: {email} is also on line {seen[key]} for {tenant.slug}.")
        user = find_user_by_email(email)
        if user is not None and db.session.scalar(select(Membership.id).where(
                Membership.tenant_id == tenant.id, Membership.user_id == user.id)):
            problems.append(f"email: {email} is already a member of {tenant.slug}.")
        elif db.session.scalar(select(Invitation.id).where(
                Invitation.tenant_id == tenant.id, Invitation.email == email, Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None))):
            problems.append(f"email: {email} is already invited to {tenant.slug}.")
    return {"email": email, "role": role, "tenant_id": tenant.id if tenant else None, "key": key}, problems


def check(dataset: str, rows: list[tuple[int, dict[str, Any]]], progress: Any = None) -> tuple[list, list]:
    """(valid rows with their line, errors as {"at": line, "message"}); `progress(n)` after each row."""
    valid, errors = [], []
    seen: dict[str, int] = {}
    for line, raw in rows:
        if raw.get("__bad__"):
            message = raw["__bad__"] if isinstance(raw["__bad__"], str) else "Not an object with the columns."
            errors.append({"at": line, "message": message})
        else:
            unknown = sorted(set(raw) - set(DATASETS[dataset]))
            row, problems = (_tenant_row if dataset == "tenants" else _user_row)(raw, seen)
            if unknown:
                problems.insert(0, f"unknown field(s) {', '.join(unknown)}.")
            key = row.get("slug") if dataset == "tenants" else row.get("key")
            if key and key not in seen:
                seen[key] = line
            if problems:
                errors.append({"at": line, "message": " ".join(problems)})
            else:
                valid.append((line, row))
        if progress is not None:
            progress(1)
    return valid, errors


def apply(actor: Any, dataset: str, valid: list[tuple[int, dict[str, Any]]], progress: Any = None) -> dict:
    """Write every row in the caller's transaction (each audited as its service does); a row that fails
    raises ServiceError naming its line, and the caller rolls everything back."""
    from app.tenancy import members
    from app.tenancy import service as tenancy_service
    from app.tenancy.queries import get_tenant

    made = invited = 0
    for line, row in valid:
        try:
            if dataset == "tenants":
                _tenant, link = tenancy_service.add_tenant(actor, row["data"], row["owner_email"])
                made += 1
                invited += 1 if link else 0
            else:
                tenant = get_tenant(row["tenant_id"])
                members.check_seat(tenant, row["email"])  # the plan's member limit, as an invitation checks it
                link = members.add_or_invite(actor, tenant, row["email"], row["role"])
                made += 1
                invited += 1 if link else 0
            db.session.flush()
        except ServiceError as exc:
            detail = "; ".join(f"{k}: {v}" for k, v in exc.errors.items()) or exc.detail
            raise Invalid(f"Line {line}: {detail}", errors={"line": str(line)}) from None
        if progress is not None:
            progress(1)
    return {"rows": made, "invited": invited}
