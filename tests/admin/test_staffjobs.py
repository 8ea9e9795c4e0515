"""Staff jobs, run by a real RQ worker against real Redis: bulk actions from the tenant list (each tenant's
change audited on its own, failures listed, the rest done), exports of every dataset with their pages'
filters (CSV protected against formula injection, JSON Lines), and imports (a dry run reports every bad row
with its line and why, duplicates within the file and against the database with emails normalised; the
real import writes all rows or none), with progress on the job's page."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select

from app.extensions import db
from app.staffjobs.models import StaffJob
from app.tenancy import service as tenancy_service
from app.tenancy.models import Invitation, Membership, Tenant
from tests.admin.helpers import audit_events, text


def run_jobs() -> None:
    """Run every job waiting on the default queue, as a worker would."""
    from rq import SimpleWorker

    from app.queue import get_queue, get_redis

    SimpleWorker([get_queue("default")], connection=get_redis()).work(burst=True, with_scheduler=False)


def job_of(response) -> StaffJob:
    location = response.headers.get("Location") or json.loads(response.headers["HX-Location"])["path"]
    db.session.expire_all()
    return db.session.get(StaffJob, location.rstrip("/").split("/")[-1])


def tenant(slug: str) -> Tenant:
    return db.session.scalar(select(Tenant).where(Tenant.slug == slug).execution_options(populate_existing=True))


def test_only_staff_reach_jobs(client, as_role):
    assert as_role("owner").get("/admin/jobs/").status_code == 404
    assert client.get("/admin/jobs/").status_code in (302, 303)


def test_bulk_suspend_selected_each_audited_failures_listed(staff_client, make):
    a, b, c = make.tenant(slug="bulk-a"), make.tenant(slug="bulk-b"), make.tenant(slug="bulk-c")
    response = staff_client.form("/admin/jobs/bulk", {
        "action": "suspend", "reason": "unpaid", "scope": "selected",
        "tenant_ids": [a.id, b.id, "ten_01jd0000000000000000000000"]})
    assert response.status_code == 303
    job = job_of(response)
    assert (job.status, job.total) == ("queued", 3)
    assert text(staff_client.get(f"/admin/jobs/{job.id}")).count('hx-trigger="every 1s"') == 1  # polls
    run_jobs()
    db.session.expire_all()
    job = db.session.get(StaffJob, job.id)
    assert (job.status, job.done, job.failed) == ("succeeded", 3, 1)
    assert job.summary == {"changed": 2, "unchanged": 0, "failed": 1}
    assert job.errors[0]["at"] == "ten_01jd0000000000000000000000"
    assert [tenant(s).status for s in ("bulk-a", "bulk-b", "bulk-c")] == ["suspended", "suspended", "active"]
    suspended = audit_events("tenant.suspended")
    assert sorted(e.tenant_id for e in suspended) == sorted([a.id, b.id])
    assert all(e.actor_type == "staff" and e.meta.get("reason") == "unpaid" for e in suspended)
    assert audit_events("bulk.started")
    page = text(staff_client.get(f"/admin/jobs/{job.id}"))
    assert "every 1s" not in page and "1 with problems" in page and "ten_01jd0000000000000000000000" in page
    del c


def test_bulk_on_every_matching_tenant_change_plan_and_tags(staff_client, make):
    for n in range(4):
        make.tenant(slug=f"match-{n}", plan="free")
    make.tenant(slug="other-1", plan="free")
    make.tenant(slug="match-pro", plan="pro")
    response = staff_client.form("/admin/jobs/bulk", {"action": "change_plan", "plan": "pro", "scope": "filtered",
                                                      "f_q": "match"})
    run_jobs()
    job = job_of(response)
    assert (job.status, job.total, job.summary) == ("succeeded", 5, {"changed": 4, "unchanged": 1, "failed": 0})
    assert tenant("match-0").plan.code == "pro" and tenant("other-1").plan.code == "free"
    assert len(audit_events("tenant.plan_changed")) == 4
    staff_client.form("/admin/jobs/bulk", {"action": "add_tag", "tag": "VIP", "scope": "filtered", "f_q": "match-"})
    run_jobs()
    assert tenant("match-3").tags == ["vip"] and tenant("other-1").tags == []
    staff_client.form("/admin/jobs/bulk", {"action": "remove_tag", "tag": "vip", "scope": "selected",
                                           "tenant_ids": [tenant("match-3").id]})
    run_jobs()
    assert tenant("match-3").tags == [] and tenant("match-2").tags == ["vip"]


def test_bulk_refuses_a_bad_request_with_a_message(staff_client, make):
    make.tenant(slug="lonely")
    nothing = staff_client.form("/admin/jobs/bulk", {"action": "suspend", "scope": "selected"})
    assert nothing.status_code == 303 and db.session.scalar(select(StaffJob)) is None
    bad_plan = staff_client.form("/admin/jobs/bulk", {"action": "change_plan", "plan": "nope", "scope": "filtered"})
    assert bad_plan.status_code == 303 and db.session.scalar(select(StaffJob)) is None
    page = text(staff_client.get("/admin/tenants/"))
    assert "Choose a plan" in page or "Select at least one tenant" in page


def _download(staff_client, job) -> str:
    response = staff_client.get(f"/admin/jobs/{job.id}/download")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    return response.get_data(as_text=True)


def test_export_tenants_as_csv_with_the_list_filters(staff_client, make):
    make.tenant(slug="exp-one", name="=HYPERLINK(\"http://evil\")")
    make.tenant(slug="exp-two", name="Two")
    make.tenant(slug="not-this", name="Other")
    form = staff_client.get("/admin/jobs/?dataset=tenants&q=exp-")
    assert 'name="filter_q" value="exp-"' in text(form)
    response = staff_client.form("/admin/jobs/export", {"dataset": "tenants", "format": "csv", "filter_q": "exp-"})
    run_jobs()
    job = job_of(response)
    assert (job.status, job.done, job.summary) == ("succeeded", 2, {"rows": 2})
    rows = list(csv.DictReader(io.StringIO(_download(staff_client, job))))
    assert [r["slug"] for r in rows] == sorted(["exp-one", "exp-two"], key=lambda s: tenant(s).id)
    assert {r["name"] for r in rows} == {"'=HYPERLINK(\"http://evil\")", "Two"}
    assert audit_events("export.started") and audit_events("export.completed") and audit_events("export.downloaded")


def test_export_audit_trail_as_json_lines_filtered_by_action(staff_client, make):
    t = make.tenant(slug="audited")
    tenancy_service.set_status(make.system, t.id, "suspended", "x")
    response = staff_client.form("/admin/jobs/export", {"dataset": "audit", "format": "jsonl",
                                                        "filter_action": "tenant.suspended"})
    run_jobs()
    lines = [json.loads(line) for line in _download(staff_client, job_of(response)).splitlines()]
    assert [(e["action"], e["tenant_id"]) for e in lines] == [("tenant.suspended", t.id)]
    assert len(lines[0]["hash"]) == 64


def test_every_dataset_exports_all_its_rows(staff_client, make):
    make.world()  # tenants with members and keys
    from app.flags import service as flags_service
    from app.usage.models import UsageDaily

    flags_service.create_flag(make.system, {"key": "beta"})
    db.session.add(UsageDaily(tenant_id=tenant("tenant-a").id, day=tenant("tenant-a").created_at.date(),
                              metric="api_calls", value=5))
    db.session.commit()
    from app.staffjobs import exports

    for dataset in exports.datasets():
        response = staff_client.form("/admin/jobs/export", {"dataset": dataset, "format": "jsonl"})
        assert response.status_code == 303, dataset
        expected = exports.count(dataset, {})  # (the audit trail grows as the job ends)
        run_jobs()
        job = job_of(response)
        assert job.status == "succeeded", (dataset, job.message)
        body = _download(staff_client, job)
        assert len(body.splitlines()) == job.done == expected > 0, dataset


def test_export_names_bad_filters(staff_client):
    response = staff_client.form("/admin/jobs/export", {"dataset": "usage", "format": "xml", "filter_since": "soon"})
    page = text(response)
    assert response.status_code == 422 and "csv or jsonl" in page and "YYYY-MM-DD" in page


def _upload(staff_client, dataset: str, name: str, body: str):
    return staff_client.form("/admin/jobs/import", {"dataset": dataset,
                                                    "file": (io.BytesIO(body.encode()), name)},
                             content_type="multipart/form-data")


def test_tenant_import_dry_run_reports_every_bad_row_then_imports_all(staff_client, make):
    make.tenant(slug="taken")
    body = ("name,slug,country,billing_email,plan,tags,owner_email\n"
            "Alpha,alpha,DE,billing@alpha.example,pro,a;b,\n"  # line 2: fine
            "Taken,taken,US,,free,,\n"  # line 3: slug exists
            "Alpha again,alpha,US,,free,,\n"  # line 4: duplicate in the file
            ",,XX,not-an-email,gold,,\n"  # line 5: no name, bad country, email, plan
            "Beta,beta,US,,free,,Owner@Beta.Example\n")  # line 6: fine (owner invited)
    response = _upload(staff_client, "tenants", "tenants.csv", body)
    assert response.status_code == 303
    run_jobs()
    job = job_of(response)
    assert (job.status, job.failed, job.summary["valid"]) == ("succeeded", 3, 2)
    by_line = {e["at"]: e["message"] for e in job.errors}
    assert set(by_line) == {3, 4, 5}
    assert "Another tenant has this slug" in by_line[3] and "also on line 2" in by_line[4]
    assert "name:" in by_line[5] and "country:" in by_line[5] and "plan:" in by_line[5]
    assert "billing_email:" in by_line[5]
    assert tenant("alpha") is None  # a dry run writes nothing
    page = text(staff_client.get(f"/admin/jobs/{job.id}"))
    assert "Import for real" not in page and "Fix the rows below" in page

    good = _upload(staff_client, "tenants", "tenants.json", json.dumps([
        {"name": "Alpha", "slug": "alpha", "country": "DE", "plan": "pro", "tags": ["a", "b"]},
        {"name": "Beta", "owner_email": "Owner@Beta.Example"}]))
    run_jobs()
    dry = job_of(good)
    assert (dry.status, dry.failed) == ("succeeded", 0)
    assert "Import for real" in text(staff_client.get(f"/admin/jobs/{dry.id}"))
    real = staff_client.form(f"/admin/jobs/{dry.id}/import", {})
    run_jobs()
    job = job_of(real)
    assert (job.status, job.summary["rows"], job.summary["invited"]) == ("succeeded", 2, 1)
    assert tenant("alpha").plan.code == "pro" and tenant("alpha").tags == ["a", "b"]
    assert db.session.scalar(select(Invitation.email).where(Invitation.tenant_id == tenant("beta").id)) \
        == "owner@beta.example"
    assert len(audit_events("tenant.created")) == 3 and audit_events("import.completed")


def test_real_import_checks_again_and_writes_nothing_when_a_row_fails(staff_client, make):
    make.plans()
    response = _upload(staff_client, "tenants", "t.jsonl", '{"name": "Gamma"}\n{"name": "Delta"}\n')
    run_jobs()
    dry = job_of(response)
    assert dry.failed == 0, dry.errors
    make.tenant(slug="delta")  # someone takes the slug between the dry run and the import
    staff_client.form(f"/admin/jobs/{dry.id}/import", {})
    run_jobs()
    job = db.session.scalars(select(StaffJob).order_by(StaffJob.created_at.desc())).first()
    assert job.status == "failed" and "Nothing was imported" in job.message
    assert [e["at"] for e in job.errors] == [2] and tenant("gamma") is None


def test_user_import_normalises_emails_and_is_all_or_nothing(staff_client, make):
    free = make.tenant(slug="small-team", plan="free")  # 3 members at most
    make.member(free, role="owner", user=make.user("existing@example.com"))
    body = ("email,tenant,role\n"
            "New.Person@Example.com,small-team,member\n"
            "new.person@example.com,small-team,admin\n"  # the same person again
            "EXISTING@example.com,small-team,member\n"  # already a member
            "someone@example.com,nowhere,member\n"  # no such tenant
            "x@example.com,small-team,emperor\n")  # no such role
    response = _upload(staff_client, "users", "users.csv", body)
    run_jobs()
    job = job_of(response)
    by_line = {e["at"]: e["message"] for e in job.errors}
    assert set(by_line) == {3, 4, 5, 6}
    assert "also on line 2" in by_line[3] and "already a member" in by_line[4]
    assert "no tenant 'nowhere'" in by_line[5] and "role:" in by_line[6]

    three = "email,tenant\na@example.com,small-team\nb@example.com,small-team\nc@example.com,small-team\n"
    response = _upload(staff_client, "users", "users.csv", three)
    run_jobs()
    dry = job_of(response)
    assert dry.failed == 0, dry.errors
    staff_client.form(f"/admin/jobs/{dry.id}/import", {})
    run_jobs()
    job = db.session.scalars(select(StaffJob).order_by(StaffJob.created_at.desc())).first()
    assert job.status == "failed" and "Line 4" in job.message and "allows 3 members" in job.message
    invited = db.session.scalars(select(Invitation).where(Invitation.tenant_id == free.id)).all()
    assert invited == [] and db.session.scalar(select(Membership.id).where(Membership.tenant_id == free.id))


def test_an_unreadable_file_is_refused_at_once(staff_client):
    response = _upload(staff_client, "tenants", "t.csv", "wrong,header\n1,2\n")
    assert response.status_code == 422 and "Unknown column" in text(response)
    response = _upload(staff_client, "tenants", "t.json", "{not json")
    assert response.status_code == 422 and "Not valid JSON" in text(response)
    assert db.session.scalar(select(StaffJob)) is None
    assert "No jobs yet" in text(staff_client.get("/admin/jobs/"))
