"""Starting staff jobs (bulk actions on tenants, exports, imports) and running them in an RQ worker.

Each job is a row (app.staffjobs.models.StaffJob) made and audited in the request, then queued. The worker
claims it (queued → running, so a job queued twice runs once), works through it committing its progress
every PROGRESS_EVERY items, and ends it succeeded or failed. A bulk action changes each tenant through the
same service a person would use, so each change is audited on its own; one tenant failing does not stop the
others (it is listed with its reason). An export writes its file into the job. An import's dry run only
reports; the real import writes all its rows in one transaction or none."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Conflict, Invalid, NotFound, ServiceError
from app.extensions import db
from app.security import Actor
from app.staffjobs import exports, imports
from app.staffjobs.models import StaffJob

BULK_ACTIONS = {"change_plan": "Change plan", "suspend": "Suspend", "resume": "Resume", "add_tag": "Add tag",
                "remove_tag": "Remove tag"}
MAX_SELECTED = 100_000
PROGRESS_EVERY = 25
log = logging.getLogger(__name__)


def _actor_of(job: StaffJob) -> Actor:
    return Actor(type="staff", id=job.created_by_id, display=job.created_by or "staff",
                 request_id=(job.params or {}).get("request_id"))


def _start(actor: Actor, kind: str, action: str, params: dict[str, Any], total: int = 0,
           source: bytes | None = None, audit_action: str = "", metadata: dict[str, Any] | None = None) -> StaffJob:
    from app.queue import enqueue_after_commit

    job = StaffJob(kind=kind, action=action, params={**params, "request_id": actor.request_id}, total=total,
                   source=source, created_by_id=actor.id, created_by=actor.display, created_at=clock.now())
    db.session.add(job)
    db.session.flush()
    audit.record(actor, audit_action or f"{kind}.started", targets=[Target("staff_job", job.id, action)],
                 metadata={"job_id": job.id, "action": action, **(metadata or {})})
    enqueue_after_commit(db.session, "default", run, job.id, job_timeout=3600)
    db.session.commit()
    return job


# --- starting ------------------------------------------------------------------------------------------


def start_bulk(actor: Actor, action: str, tenant_ids: list[str] | None, filters: dict[str, str] | None,
               params: dict[str, Any]) -> StaffJob:
    """A bulk action on the tenants checked (tenant_ids) or on every tenant the list's filters select."""
    from app.plans.queries import find_plan
    from app.tenancy.service import parse_tags

    errors: dict[str, str] = {}
    if action not in BULK_ACTIONS and action != "export":
        raise Invalid("Choose an action.", errors={"action": f"One of {', '.join(BULK_ACTIONS)} or export."})
    clean: dict[str, Any] = {}
    if action == "change_plan":
        plan = find_plan(str(params.get("plan", "")))
        if plan is None or plan.archived:
            errors["plan"] = "Choose a plan (not archived)."
        else:
            clean["plan"] = plan.code
    if action == "suspend":
        reason = str(params.get("reason", "")).strip()
        if len(reason) > 300:
            errors["reason"] = "A reason has at most 300 characters."
        clean["reason"] = reason
    if action in ("add_tag", "remove_tag"):
        try:
            tags = parse_tags(str(params.get("tag", "")))
        except Invalid as exc:
            errors["tag"] = " ".join(exc.errors.values())
            tags = []
        if len(tags) != 1 and "tag" not in errors:
            errors["tag"] = "One tag."
        clean["tag"] = tags[0] if tags else ""
    if action == "export" and params.get("format") not in exports.FORMATS:
        errors["format"] = "csv or jsonl."
    ids = sorted({t for t in tenant_ids or [] if isinstance(t, str)})[:MAX_SELECTED]
    if not ids and filters is None:
        errors["tenants"] = "Select at least one tenant (or every tenant the filters match)."
    if errors:
        raise Invalid("The bulk action has invalid fields.", errors=errors)
    if action == "export":
        return start_export(actor, "tenants", params["format"], {}, tenant_ids=ids or None, filters=filters)
    selection = {"tenant_ids": ids} if ids else {"filters": filters or {}}
    return _start(actor, "bulk", action, {**clean, **selection}, total=len(ids),
                  audit_action="bulk.started", metadata={"selected": len(ids) if ids else "filters", **clean})


def start_export(actor: Actor, dataset: str, fmt: str, args: dict[str, str], tenant_ids: list[str] | None = None,
                 filters: dict[str, str] | None = None) -> StaffJob:
    """An export of a dataset with its page's filters (or, for tenants, the tenants checked)."""
    clean = exports.clean_request(dataset, fmt, filters if filters is not None else args)
    params = {"format": fmt, "filters": clean}
    if tenant_ids:
        params["tenant_ids"] = tenant_ids
    return _start(actor, "export", dataset, params, audit_action="export.started",
                  metadata={"format": fmt, "filters": clean, "selected": len(tenant_ids or [])})


def start_import(actor: Actor, dataset: str, filename: str, content: bytes, declared: str, dry_run: bool) -> StaffJob:
    """An import (dry run or real) of an uploaded file; the file is parsed now so an unreadable one is
    refused at once, and checked row by row in the job."""
    if dataset not in imports.DATASETS:
        raise Invalid("Unknown import.", errors={"dataset": f"One of {', '.join(imports.DATASETS)}."})
    fmt = imports.format_of(filename, declared)
    rows = imports.parse(content, fmt, dataset)
    return _start(actor, "import", dataset, {"format": fmt, "filename": filename[:200], "dry_run": dry_run},
                  total=len(rows), source=content, audit_action="import.dry_run" if dry_run else "import.started",
                  metadata={"format": fmt, "rows": len(rows), "filename": filename[:200]})


# --- reading -----------------------------------------------------------------------------------------


def get_job(job_id: str) -> StaffJob:
    job = db.session.get(StaffJob, job_id) if isinstance(job_id, str) else None
    if job is None:
        raise NotFound("No such job.")
    return job


def recent_jobs(limit: int = 50, kind: str | None = None) -> list[StaffJob]:
    stmt = select(StaffJob).order_by(StaffJob.created_at.desc(), StaffJob.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(StaffJob.kind == kind)
    return list(db.session.scalars(stmt))


def download(actor: Actor, job_id: str) -> tuple[StaffJob, bytes]:
    """An export's file (gzipped); audited as a download."""
    job = get_job(job_id)
    if job.kind != "export" or job.status != "succeeded" or job.result is None:
        raise Conflict("This job has no file to download (yet).")
    audit.record(actor, "export.downloaded", targets=[Target("staff_job", job.id, job.action)],
                 metadata={"job_id": job.id, "rows": job.done, "file": job.result_name})
    db.session.commit()
    return job, job.result


# --- running (in the worker) -----------------------------------------------------------------------


def run(job_id: str) -> str:
    """Claim and run one job; returns its final status."""
    claimed = db.session.execute(update(StaffJob).where(StaffJob.id == job_id, StaffJob.status == "queued")
                                 .values(status="running", started_at=clock.now()))
    db.session.commit()
    if claimed.rowcount != 1:
        return "skipped"
    job = get_job(job_id)
    try:
        {"bulk": _run_bulk, "export": _run_export, "import": _run_import}[job.kind](job)
    except Exception as exc:  # any failure ends the job as failed, with why
        db.session.rollback()
        job = get_job(job_id)
        job.status, job.finished_at = "failed", clock.now()
        job.message = (exc.detail if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}")[:500]
        if not isinstance(exc, ServiceError):
            log.exception("staff job %s failed", job_id)
        db.session.commit()
        return "failed"
    return job.status


def _progress(job: StaffJob, force: bool = False) -> None:
    if force or job.done % PROGRESS_EVERY == 0:
        db.session.commit()


def _bulk_ids(job: StaffJob) -> list[str]:
    from app.tenancy.models import Tenant
    from app.tenancy.queries import tenants_query

    params = job.params or {}
    if params.get("tenant_ids"):
        return list(params["tenant_ids"])
    filters = params.get("filters") or {}
    stmt = tenants_query(filters.get("q", ""), filters.get("status", ""), filters.get("plan", ""),
                         filters.get("tag", "")).with_only_columns(Tenant.id).order_by(Tenant.id)
    return list(db.session.scalars(stmt.limit(MAX_SELECTED)))


def _one(actor: Actor, action: str, tenant_id: str, params: dict[str, Any]) -> str:
    """Apply the action to one tenant (committed by its service); returns changed or unchanged."""
    from app.billing import changes
    from app.billing import queries as billing_queries
    from app.plans.queries import find_plan
    from app.tenancy import queries as tenancy_queries
    from app.tenancy import service as tenancy_service

    tenant = tenancy_queries.get_tenant(tenant_id)
    if action == "change_plan":
        plan = find_plan(params["plan"])
        sub = billing_queries.subscription(tenant_id)
        if sub is not None and sub.status != "canceled":
            if sub.plan_id == plan.id and not sub.pending_plan_id:
                return "unchanged"
            changes.change_plan(actor, tenant_id, plan.code)
            return "changed"
        if tenant.plan_id == plan.id:
            return "unchanged"
        tenancy_service.update_tenant(actor, tenant_id, {"plan_id": plan.id})
        return "changed"
    if action in ("suspend", "resume"):
        status = "suspended" if action == "suspend" else "active"
        if tenant.status == status or (action == "resume" and tenant.status == "closed"):
            return "unchanged"
        if action == "suspend" and tenant.status == "closed":
            return "unchanged"
        tenancy_service.set_status(actor, tenant_id, status, params.get("reason", ""))
        return "changed"
    tags = set(tenant.tags)
    wanted = tags | {params["tag"]} if action == "add_tag" else tags - {params["tag"]}
    if wanted == tags:
        return "unchanged"
    tenancy_service.update_tenant(actor, tenant_id, {"tags": sorted(wanted)})
    return "changed"


def _run_bulk(job: StaffJob) -> None:
    actor = _actor_of(job)
    ids = _bulk_ids(job)
    job.total = len(ids)
    db.session.commit()
    counts = {"changed": 0, "unchanged": 0, "failed": 0}
    job_id = job.id
    for tenant_id in ids:
        try:
            counts[_one(actor, job.action, tenant_id, job.params)] += 1
        except ServiceError as exc:
            db.session.rollback()
            job = get_job(job_id)
            counts["failed"] += 1
            detail = "; ".join(exc.errors.values()) if exc.errors else exc.detail
            job.note_error(tenant_id, detail)
        job = get_job(job_id)
        job.done += 1
        _progress(job)
    job.summary = counts
    job.status, job.finished_at = "succeeded", clock.now()
    db.session.commit()


def _run_export(job: StaffJob) -> None:
    from app.tenancy.models import Tenant

    params = job.params or {}
    dataset = exports.datasets()[job.action]
    filters = dict(params.get("filters") or {})
    job.total = exports.count(job.action, filters)
    ids = params.get("tenant_ids")
    if ids:
        job.total = len(ids)
    db.session.commit()
    job_id = job.id
    writer = exports.Writer(params["format"], dataset.columns)
    written = 0
    if ids:
        batches = (list(db.session.scalars(select(Tenant).where(Tenant.id.in_(ids[i:i + 500])).order_by(Tenant.id)))
                   for i in range(0, len(ids), 500))
        batches = ([dataset.row(t) for t in batch] for batch in batches)
    else:
        batches = exports.rows(job.action, filters)
    for batch in batches:
        writer.write(batch)
        written += len(batch)
        db.session.execute(update(StaffJob).where(StaffJob.id == job_id).values(done=written))
        db.session.commit()
    data = writer.close()
    job = get_job(job_id)
    job.done, job.total = written, max(written, job.total)
    job.result, job.result_size = data, len(data)
    job.result_name = exports.file_name(job.action, params["format"], clock.now()) + ".gz"
    job.summary = {"rows": written}
    job.status, job.finished_at = "succeeded", clock.now()
    audit.record(_actor_of(job), "export.completed", targets=[Target("staff_job", job.id, job.action)],
                 metadata={"job_id": job.id, "rows": written, "format": params["format"], "filters": filters})
    db.session.commit()


def _run_import(job: StaffJob) -> None:
    params = job.params or {}
    job_id = job.id
    rows = imports.parse(job.source or b"", params["format"], job.action)
    job.total = len(rows)
    db.session.commit()

    checked = [0]

    def progress(n: int) -> None:
        checked[0] += n
        if checked[0] % 200 == 0:
            db.session.execute(update(StaffJob).where(StaffJob.id == job_id).values(done=checked[0]))
            db.session.commit()

    valid, errors = imports.check(job.action, rows, progress=progress)
    job = get_job(job_id)
    job.errors, job.failed = errors[:1000], len(errors)
    job.done = len(rows)
    job.summary = {"rows": len(rows), "valid": len(valid), "invalid": len(errors), "dry_run": params["dry_run"]}
    if params["dry_run"] or errors:
        job.status = "succeeded" if params["dry_run"] else "failed"
        if errors and not params["dry_run"]:
            job.message = f"Nothing was imported: {len(errors)} row(s) have problems (see below)."
        job.finished_at = clock.now()
        db.session.commit()
        return
    db.session.commit()
    actor = _actor_of(job)
    try:
        result = imports.apply(actor, job.action, valid)
        job = get_job(job_id)
        audit.record(actor, "import.completed", targets=[Target("staff_job", job_id, job.action)],
                     metadata={"job_id": job_id, "rows": result["rows"], "invited": result["invited"],
                               "filename": params.get("filename", "")})
        job.summary = {**job.summary, **result}
        job.status, job.finished_at = "succeeded", clock.now()
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        job = get_job(job_id)
        job.status, job.finished_at = "failed", clock.now()
        job.message = f"Nothing was imported: {exc.detail}"[:500]
        db.session.commit()
