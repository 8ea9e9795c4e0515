"""Staff pages /admin/jobs: the bulk actions, exports and imports staff started, each with its progress
(polled over HTMX while it runs), the rows it could not handle and, for an export, the download; a form to
export any dataset with the filters of its page, and one to import tenants or users (a dry run first, then
"Import for real"). The tenant list's bulk actions post to /admin/jobs/bulk."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

from flask import Blueprint, Response, request, url_for

from app.errors import ServiceError
from app.security import current_actor, staff_required
from app.staffjobs import exports, imports, service
from app.web import redirect_to, render, toast

bp = Blueprint("staffjobs_admin", __name__, url_prefix="/admin/jobs")

MEDIA = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


def _index(status: int = 200, **context):
    dataset = request.args.get("dataset", "") or context.get("export_form", {}).get("dataset", "tenants")
    found = exports.datasets().get(dataset) or exports.datasets()["tenants"]
    carried = {name: request.args.get(name, "").strip()[:200] for name in found.filters if request.args.get(name)}
    return render("admin/staffjobs/index.html", status=status, jobs=service.recent_jobs(),
                  datasets=exports.datasets(),
                  dataset_options=[(d.name, d.title) for d in exports.datasets().values()],
                  import_datasets=imports.DATASETS, formats=exports.FORMATS,
                  **{"export_form": {"dataset": found.name, "format": "csv", "filters": carried},
                     "export_errors": {}, "import_errors": {}, "import_form": {"dataset": "tenants"}, **context})


@bp.route("/")
@staff_required
def index():
    """Recent jobs; ?dataset=…&<filters> pre-fills the export form (the Export links of other pages)."""
    return _index()


@bp.route("/export", methods=["POST"])
@staff_required
def export():
    form = request.form
    dataset, fmt = form.get("dataset", ""), form.get("format", "")
    args = {k[len("filter_"):]: v for k, v in form.items() if k.startswith("filter_")}
    try:
        job = service.start_export(current_actor(), dataset, fmt, args)
    except ServiceError as exc:
        return _index(exc.status, export_form={"dataset": dataset, "format": fmt, "filters": args},
                      export_errors=exc.errors or {"_": exc.detail})
    toast(f"Export of {dataset} started.")
    return redirect_to(url_for(".detail", job_id=job.id))


@bp.route("/import", methods=["POST"])
@staff_required
def import_():
    upload = request.files.get("file")
    dataset = request.form.get("dataset", "")
    if upload is None or not upload.filename:
        return _index(422, import_form={"dataset": dataset},
                      import_errors={"file": "Choose a file (CSV or JSON)."})
    content = upload.read(imports.MAX_BYTES + 1)
    try:
        job = service.start_import(current_actor(), dataset, upload.filename, content,
                                   request.form.get("format", ""), dry_run=True)
    except ServiceError as exc:
        return _index(exc.status, import_form={"dataset": dataset}, import_errors=exc.errors or {"file": exc.detail})
    toast("Dry run started: nothing is written until you import for real.")
    return redirect_to(url_for(".detail", job_id=job.id))


@bp.route("/bulk", methods=["POST"])
@staff_required
def bulk():
    """From the tenant list: an action on the checked tenants, or on all the filters match (scope=filtered)."""
    form = request.form
    everything = form.get("scope") == "filtered"
    filters = {k: form.get(f"f_{k}", "").strip() for k in ("q", "status", "plan", "tag")} if everything else None
    filters = {k: v for k, v in filters.items() if v} if filters is not None else None
    try:
        job = service.start_bulk(current_actor(), form.get("action", ""), form.getlist("tenant_ids"), filters,
                                 {k: form.get(k, "") for k in ("plan", "reason", "tag", "format")})
    except ServiceError as exc:
        toast(" ".join(exc.errors.values()) if exc.errors else exc.detail, "error")
        return redirect_to(url_for("tenancy_admin.index", **(filters or {})))
    toast(f"{service.BULK_ACTIONS.get(job.action, 'Export')} started.")
    return redirect_to(url_for(".detail", job_id=job.id))


@bp.route("/<job_id>")
@staff_required
def detail(job_id: str):
    """One job; while it runs, HTMX asks for its status fragment every second."""
    job = service.get_job(job_id)
    return render("admin/staffjobs/detail.html", "admin/staffjobs/_status.html", job=job,
                  actions=service.BULK_ACTIONS)


@bp.route("/<job_id>/import", methods=["POST"])
@staff_required
def import_for_real(job_id: str):
    """After a clean dry run: the same file, imported (all rows or none)."""
    dry = service.get_job(job_id)
    if dry.kind != "import" or not dry.params.get("dry_run") or dry.status != "succeeded" or dry.failed:
        toast("Only a dry run without problems can be imported.", "error")
        return redirect_to(url_for(".detail", job_id=job_id))
    job = service.start_import(current_actor(), dry.action, dry.params.get("filename", ""), dry.source or b"",
                               dry.params.get("format", ""), dry_run=False)
    toast("Import started.")
    return redirect_to(url_for(".detail", job_id=job.id))


@bp.route("/<job_id>/download")
@staff_required
def download(job_id: str):
    """An export's file, decompressed as it is sent."""
    job, data = service.download(current_actor(), job_id)

    def chunks() -> Iterator[bytes]:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as source:
            while block := source.read(64 * 1024):
                yield block

    name = job.result_name.removesuffix(".gz")
    response = Response(chunks(), mimetype=MEDIA.get(job.params.get("format"), "application/octet-stream"))
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
