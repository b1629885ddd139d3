"""The upload service, run in this process exactly as the task runs it."""

from __future__ import annotations

import pytest
from django.db import DataError

from registry.access import Actor
from registry.exceptions import InvalidTransition, PermissionDenied, ValidationFailed
from registry.models import (
    AuditEvent,
    BulkUpload,
    BulkUploadError,
    Dispute,
    Membership,
    Work,
    WorkIdentifier,
    WorkURL,
)
from registry.selectors.uploads import bulk_upload_errors_csv, neutralise_cell
from registry.services import uploads as upload_service
from registry.services.audit import audit_verify
from registry.services.uploads import bulk_upload_cancel, bulk_upload_process
from registry.services.works import do_work_register
from registry.uploads.rows import PreparedRow
from tests.conftest import OPERATOR, owner_of
from tests.registry.uploads.conftest import (
    catalog_rows,
    csv_manifest,
    json_manifest,
    ndjson_manifest,
    run_to_end,
)

pytestmark = pytest.mark.django_db


def errors_of(upload: BulkUpload) -> list[tuple[int, str, str, str]]:
    return list(upload.errors.order_by("row", "pk").values_list("row", "external_ref", "field", "message"))


def test_a_catalog_is_registered_with_its_references_and_counted(upload_and_run, studio):
    upload = upload_and_run(csv_manifest(catalog_rows(25)))
    assert (upload.status, upload.total_rows, upload.processed_rows) == ("done", 25, 25)
    assert (upload.created_count, upload.updated_count, upload.failed_count) == (25, 0, 0)
    assert upload.committed_through_row == 25 and upload.manifest_format == "csv"
    work = Work.objects.get(owner=studio, external_ref="CEL-000007")
    assert (work.title, work.kind, work.year, work.lineage) == ("Cel 7", "image", 2024, "/")
    assert list(work.urls.values_list("url", flat=True)) == ["https://aozora.example/cels/cel-7.png"]
    assert list(work.identifiers.values_list("scheme", "value")) == [("doi", "10.5555/cel.7")]
    assert not BulkUploadError.objects.exists()


def test_every_chunk_is_one_audit_event_and_the_chain_holds(upload_and_run, monkeypatch):
    monkeypatch.setattr(upload_service, "CHUNK_ROWS", 10)
    upload = upload_and_run(csv_manifest(catalog_rows(25)))
    chunks = AuditEvent.objects.filter(action="bulk_upload.chunk", object_id=str(upload.pk)).order_by("seq")
    assert [event.data["positions"] for event in chunks] == [[1, 10], [11, 20], [21, 25]]
    assert sum(len(event.data["created"]) for event in chunks) == 25
    assert AuditEvent.objects.filter(action="bulk_upload.finish", object_id=str(upload.pk)).count() == 1
    assert audit_verify().ok


def test_csv_json_and_ndjson_manifests_register_the_same_works(upload_and_run, make_org):
    rows = catalog_rows(3)
    results = {}
    for name, manifest in (("a.csv", csv_manifest(rows, bom=True)), ("a.json", json_manifest(rows)),
                           ("a.ndjson", ndjson_manifest(rows))):
        org = make_org()
        upload = upload_and_run(manifest, org=org, name=name)
        assert upload.status == "done", upload.error
        results[upload.manifest_format] = sorted(
            Work.objects.filter(owner=org).values_list("external_ref", "title", "kind", "year")
        )
    assert results["csv"] == results["json"] == results["ndjson"]
    assert len(results["csv"]) == 3


def test_json_rows_may_give_lists_and_numbers(upload_and_run, studio):
    upload = upload_and_run(json_manifest([
        {"external_ref": 1001, "title": "Key frame", "year": 1998, "creators": ["Aoi", "Sora"],
         "urls": ["https://aozora.example/kf/1", "https://aozora.example/kf/2"], "identifiers": []},
    ]), name="c.json")
    assert upload.status == "done" and upload.failed_count == 0, errors_of(upload)
    work = Work.objects.get(owner=studio, external_ref="1001")
    assert (work.year, work.creators, work.urls.count()) == (1998, "Aoi; Sora", 2)


def test_running_a_manifest_again_updates_and_creates_no_duplicates(upload_and_run, studio):
    rows = catalog_rows(5)
    upload_and_run(csv_manifest(rows))
    rows[1]["title"] = "Cel 2 (retouched)"
    rows[2]["urls"] = "https://aozora.example/cels/moved-3.png"
    rows[3]["identifiers"] = ""
    rows.append({"external_ref": "CEL-NEW", "title": "New cel", "kind": "image"})
    second = upload_and_run(csv_manifest(rows, columns=["external_ref", "title", "kind", "urls", "identifiers"]))
    assert (second.created_count, second.updated_count, second.failed_count) == (1, 5, 0)
    assert Work.objects.filter(owner=studio).count() == 6
    assert Work.objects.get(owner=studio, external_ref="CEL-000002").title == "Cel 2 (retouched)"
    assert list(Work.objects.get(owner=studio, external_ref="CEL-000003").urls.values_list("url", flat=True)) == [
        "https://aozora.example/cels/moved-3.png"
    ]
    assert not WorkIdentifier.objects.filter(work__external_ref="CEL-000004").exists()
    # A column the manifest does not have leaves that part of a work alone.
    assert Work.objects.get(owner=studio, external_ref="CEL-000005").year == 2024
    assert WorkURL.objects.filter(work__owner=studio).count() == 5


def test_parents_anywhere_in_the_manifest_or_already_registered(upload_and_run, studio):
    franchise = do_work_register(acting=OPERATOR, organization=studio, external_ref="FR", title="Aozora",
        kind="collection")
    # Children before their parents, a grandchild first of all.
    rows = [
        {"external_ref": "EP1-CUT3", "title": "Cut 3", "parent_ref": "EP1"},
        {"external_ref": "EP1", "title": "Episode 1", "parent_ref": "S1"},
        {"external_ref": "S1", "title": "Season 1", "parent_ref": "FR"},
        {"external_ref": "LOOSE", "title": "No parent", "parent_ref": ""},
    ]
    upload = upload_and_run(csv_manifest(rows))
    assert upload.failed_count == 0, errors_of(upload)
    season = Work.objects.get(external_ref="S1")
    episode = Work.objects.get(external_ref="EP1")
    cut = Work.objects.get(external_ref="EP1-CUT3")
    assert season.parent_id == franchise.pk and episode.parent_id == season.pk and cut.parent_id == episode.pk
    assert cut.ancestor_ids == [franchise.pk, season.pk, episode.pk]
    assert Work.objects.get(external_ref="LOOSE").parent_id is None


def test_a_changed_parent_moves_the_work_and_everything_under_it(upload_and_run, studio):
    upload_and_run(csv_manifest([
        {"external_ref": "A", "title": "A", "parent_ref": ""},
        {"external_ref": "B", "title": "B", "parent_ref": ""},
        {"external_ref": "S", "title": "S", "parent_ref": "A"},
        {"external_ref": "E", "title": "E", "parent_ref": "S"},
    ]))
    upload = upload_and_run(csv_manifest([
        {"external_ref": "S", "title": "S", "parent_ref": "B"},
    ]))
    assert upload.failed_count == 0, errors_of(upload)
    b, s, e = (Work.objects.get(external_ref=ref) for ref in "BSE")
    assert s.parent_id == b.pk and s.ancestor_ids == [b.pk]
    assert e.ancestor_ids == [b.pk, s.pk]


def test_a_move_under_its_own_descendant_is_refused_on_its_row(upload_and_run):
    upload_and_run(csv_manifest([
        {"external_ref": "A", "title": "A", "parent_ref": ""},
        {"external_ref": "B", "title": "B", "parent_ref": "A"},
    ]))
    upload = upload_and_run(csv_manifest([{"external_ref": "A", "title": "A", "parent_ref": "B"}]))
    assert upload.failed_count == 1
    assert errors_of(upload)[0][:3] == (1, "A", "parent_ref")
    assert "under itself" in errors_of(upload)[0][3]
    assert Work.objects.get(external_ref="A").parent_id is None


def test_cycles_within_a_manifest_fail_their_rows(upload_and_run):
    upload = upload_and_run(csv_manifest([
        {"external_ref": "X", "title": "X", "parent_ref": "Y"},
        {"external_ref": "Y", "title": "Y", "parent_ref": "X"},
        {"external_ref": "SELF", "title": "Self", "parent_ref": "SELF"},
        {"external_ref": "OK", "title": "Fine", "parent_ref": ""},
    ]))
    assert (upload.created_count, upload.failed_count) == (1, 3)
    assert {(row, field) for row, _, field, _ in errors_of(upload)} == {(1, "parent_ref"), (2, "parent_ref"),
                                                                        (3, "parent_ref")}
    assert "cycle" in errors_of(upload)[0][3]
    assert list(Work.objects.values_list("external_ref", flat=True)) == ["OK"]


def test_a_missing_or_failed_parent_fails_the_child(upload_and_run):
    upload = upload_and_run(csv_manifest([
        {"external_ref": "CHILD1", "title": "c", "parent_ref": "NOWHERE"},
        {"external_ref": "BADPARENT", "title": "", "parent_ref": ""},
        {"external_ref": "CHILD2", "title": "c", "parent_ref": "BADPARENT"},
    ]))
    errors = {row: (field, message) for row, _, field, message in errors_of(upload)}
    assert errors[1][0] == "parent_ref" and "No work 'NOWHERE'" in errors[1][1]
    assert errors[2][0] == "title"
    assert errors[3][0] == "parent_ref" and "row 2" in errors[3][1]
    assert not Work.objects.exists()
    # Stored as codes: the report reads in the reader's language, whatever the worker spoke.
    from django.utils import translation

    from registry.message_codes import message_render

    stored = {e.row: e for e in upload.errors.all()}
    with translation.override("ja"):
        assert message_render(stored[1].code, stored[1].params) == (
            f"「NOWHERE」という作品は、このマニフェストにも {upload.organization.name} の作品にもありません。")
        unregistered_parent = message_render(stored[3].code, stored[3].params)
        assert "2 行目" in unregistered_parent and "は登録されなかったため" in unregistered_parent


def test_duplicate_external_ref_fails_the_later_row_only(upload_and_run):
    upload = upload_and_run(csv_manifest([
        {"external_ref": "DUP", "title": "First"},
        {"external_ref": "OTHER", "title": "Other"},
        {"external_ref": "DUP", "title": "Second"},
    ]))
    assert errors_of(upload) == [
        (3, "DUP", "external_ref",
         "'DUP' already appears on row 1; an external_ref may appear only once in a manifest."),
    ]
    assert Work.objects.get(external_ref="DUP").title == "First"


BAD_ROWS = [
    ({"external_ref": "R", "title": "", "kind": "image"}, {}),
    ({"external_ref": "R", "title": "t", "kind": "painting"}, {}),
    ({"external_ref": "R", "title": "t" * 501}, {}),
    ({"external_ref": "", "title": "t"}, {}),
    ({"external_ref": "R", "title": "t", "urls": "ftp://aozora.example/a;https://ok.example/"},
     {"urls": ["ftp://aozora.example/a", "https://ok.example/"]}),
    ({"external_ref": "R", "title": "t", "identifiers": "isbn:978-0-306-40615-8;isan:nonsense"},
     {"identifiers": ["isbn:978-0-306-40615-8", "isan:nonsense"]}),
    ({"external_ref": "R", "title": "t", "year": "0"}, {"year": 0}),
]


@pytest.mark.parametrize(("row", "register_kwargs"), BAD_ROWS)
def test_a_row_is_refused_for_the_same_fields_as_single_registration(upload_and_run, studio, row, register_kwargs):
    kwargs = {"external_ref": row["external_ref"], "title": row["title"], "kind": row.get("kind", "other"),
              **register_kwargs}
    with pytest.raises(ValidationFailed) as refused:
        do_work_register(acting=OPERATOR, organization=studio, **kwargs)
    upload = upload_and_run(csv_manifest([row]))
    assert upload.failed_count == 1 and not Work.objects.exists()
    assert {field for _, _, field, _ in errors_of(upload)} == set(refused.value.fields)


def test_invalid_identifiers_and_urls_are_named_on_their_row(upload_and_run):
    upload = upload_and_run(csv_manifest([
        {"external_ref": "GOOD", "title": "ok", "urls": "https://aozora.example/a", "identifiers": ""},
        {"external_ref": "BAD", "title": "bad", "urls": "https://aozora.example/b;notaurl",
         "identifiers": "isbn:978-0-306-40615-8"},
    ]))
    errors = {field: (row, ref, message) for row, ref, field, message in errors_of(upload)}
    assert set(errors) == {"identifiers", "urls"}
    assert errors["identifiers"][:2] == errors["urls"][:2] == (2, "BAD")
    assert "978-0-306-40615-8" in errors["identifiers"][2] and "check digit" in errors["identifiers"][2]
    assert "notaurl" in errors["urls"][2]
    # Nothing of the bad row is written, not even its good URL.
    assert list(Work.objects.values_list("external_ref", flat=True)) == ["GOOD"]
    assert WorkURL.objects.count() == 1


def test_a_row_with_the_wrong_number_of_cells_fails_alone(upload_and_run):
    manifest = b"external_ref,title,year\r\nA,ok,2001\r\nB,\"broken, with,extra\",x,y\r\nC,fine,\r\n"
    upload = upload_and_run(manifest)
    assert [(row, ref) for row, ref, _, _ in errors_of(upload)] == [(2, "B")]
    assert "4 cells but the header has 3" in errors_of(upload)[0][3]
    assert sorted(Work.objects.values_list("external_ref", flat=True)) == ["A", "C"]


def test_cancel_stops_between_chunks(start_upload, monkeypatch, studio):
    monkeypatch.setattr(upload_service, "CHUNK_ROWS", 10)
    upload = start_upload(csv_manifest(catalog_rows(35)))
    # One chunk, then the task would hand over (a zero time budget stops after each chunk).
    assert bulk_upload_process(upload_id=str(upload.pk), time_budget=0) is True
    cancelled = bulk_upload_cancel(actor=Actor.for_user(owner_of(studio)), upload=upload)
    assert cancelled.status == "cancelled"
    assert bulk_upload_process(upload_id=str(upload.pk)) is False
    upload.refresh_from_db()
    assert (upload.status, upload.processed_rows, upload.committed_through_row) == ("cancelled", 10, 10)
    assert Work.objects.filter(owner=studio).count() == 10
    assert bulk_upload_cancel(actor=Actor.for_user(owner_of(studio)), upload=upload).status == "cancelled"


def test_a_finished_upload_cannot_be_cancelled(upload_and_run, studio):
    upload = upload_and_run(csv_manifest(catalog_rows(2)))
    with pytest.raises(InvalidTransition):
        bulk_upload_cancel(actor=Actor.for_user(owner_of(studio)), upload=upload)


def test_a_run_resumes_after_the_last_committed_chunk(start_upload, monkeypatch, studio):
    monkeypatch.setattr(upload_service, "CHUNK_ROWS", 10)
    upload = start_upload(csv_manifest(catalog_rows(35)))
    for _ in range(2):
        assert bulk_upload_process(upload_id=str(upload.pk), time_budget=0) is True
    upload.refresh_from_db()
    assert upload.committed_through_row == 20
    upload = run_to_end(upload)
    assert (upload.created_count, upload.updated_count, upload.processed_rows) == (35, 0, 35)
    assert Work.objects.filter(owner=studio).count() == 35


def test_a_chunk_already_committed_by_another_delivery_is_not_written_again(start_upload, monkeypatch):
    monkeypatch.setattr(upload_service, "CHUNK_ROWS", 10)
    upload = start_upload(csv_manifest(catalog_rows(15)))
    assert bulk_upload_process(upload_id=str(upload.pk), time_budget=0)
    upload.refresh_from_db()
    prepared = [PreparedRow(position=1, number=1, external_ref="CEL-000001", fields={"title": "x"})]
    # A second delivery that read committed_through_row = 0 before the first one committed.
    assert upload_service._commit_chunk(upload, OPERATOR, 0, prepared) is False
    upload.refresh_from_db()
    assert (upload.processed_rows, upload.created_count) == (10, 10)


def test_starting_an_upload_needs_a_manager(start_upload, studio, member):
    with pytest.raises(PermissionDenied):
        start_upload(csv_manifest(catalog_rows(1)), actor=member(studio, Membership.Role.VIEWER))
    manager = member(studio, Membership.Role.MANAGER)
    assert start_upload(csv_manifest(catalog_rows(1)), actor=manager).status == "pending"


def test_the_error_report_neutralises_formulas(upload_and_run):
    upload = upload_and_run(csv_manifest([
        {"external_ref": '=HYPERLINK("http://evil.example","x")', "title": ""},
        {"external_ref": "+1", "title": ""},
        {"external_ref": "\uff1dSUM(A1)", "title": ""},
        {"external_ref": "plain", "title": ""},
    ]))
    lines = list(bulk_upload_errors_csv(upload=upload))
    assert lines[0] == "\ufeffrow,external_ref,field,message\r\n"
    assert lines[1].startswith('1,"\'=HYPERLINK(')
    assert lines[2].startswith("2,'+1,title,")
    assert lines[3].startswith("3,'\uff1dSUM(A1),title,")
    assert lines[4].startswith("4,plain,title,")
    assert neutralise_cell("\tcmd") == "'\tcmd" and neutralise_cell("-2") == "'-2"


def test_a_reference_another_organisation_registered_opens_a_dispute_as_single_registration_does(
    upload_and_run, studio, make_org
):
    rival = make_org(name="Rival Studio")
    theirs = do_work_register(acting=OPERATOR, organization=rival, external_ref="R-1", title="Their cel",
                           identifiers=["doi:10.5555/shared.1"])
    upload = upload_and_run(csv_manifest([
        {"external_ref": "MINE-1", "title": "Our cel", "identifiers": "doi:10.5555/shared.1"},
        {"external_ref": "MINE-2", "title": "Unrelated", "identifiers": "doi:10.5555/ours.2"},
    ]))
    assert upload.failed_count == 0
    mine = Work.objects.get(owner=studio, external_ref="MINE-1")
    dispute = Dispute.objects.get()
    assert (dispute.kind, dispute.claimant_id, dispute.respondent_id) == ("ownership", rival.pk, studio.pk)
    assert set(dispute.works.values_list("pk", flat=True)) == {theirs.pk, mine.pk}


def test_a_shared_url_or_file_hash_opens_a_dispute_with_the_other_owner_only(upload_and_run, studio, make_org):
    rival = make_org(name="Rival Studio")
    theirs = do_work_register(acting=OPERATOR, organization=rival, external_ref="R-1", title="Their cel",
                              urls=["https://cdn.rival.example/cel/1.png"])
    ours_before = do_work_register(acting=OPERATOR, organization=studio, external_ref="OLD-1", title="Our old cel",
                                   urls=["https://cdn.aozora.example/cel/2.png"])
    upload = upload_and_run(csv_manifest([
        {"external_ref": "MINE-1", "title": "Our cel", "urls": "https://CDN.rival.example/cel/1.png"},
        # Our own earlier work with the same URL: one owner's catalog, no conflict with itself.
        {"external_ref": "MINE-2", "title": "Our cel again", "urls": "https://cdn.aozora.example/cel/2.png"},
    ]))
    assert upload.failed_count == 0
    mine = Work.objects.get(owner=studio, external_ref="MINE-1")
    dispute = Dispute.objects.get()
    assert set(dispute.works.values_list("pk", flat=True)) == {theirs.pk, mine.pk}
    assert not Dispute.objects.filter(works=ours_before).exists()


def test_a_chunks_conflict_lookups_read_the_reference_tables_by_index(upload_and_run, studio, make_org):
    """The tables' statistics date from before the upload grew them: the lookups must not trust them to scan."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("planner settings are PostgreSQL's")
    rival = make_org(name="Rival Studio")
    do_work_register(acting=OPERATOR, organization=rival, external_ref="R-1", title="Their cel",
                     urls=["https://cdn.rival.example/cel/1.png"], identifiers=["doi:10.5555/shared.1"])
    seen: list[tuple[str, str]] = []

    def setting_seen(execute, sql, params, many, context):
        reads_references = "registry_workurl" in sql or "registry_workidentifier" in sql
        if sql.lstrip().upper().startswith("SELECT") and reads_references:
            # The raw connection: what the statement is about to run under, without recursing into wrappers.
            seen.append((sql, context["connection"].connection.execute("SHOW enable_seqscan").fetchone()[0]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(setting_seen):
        upload_and_run(csv_manifest([
            {"external_ref": "MINE-1", "title": "Our cel", "urls": "https://cdn.rival.example/cel/1.png",
             "identifiers": "doi:10.5555/shared.1"},
        ]))
    assert Dispute.objects.count() == 1
    lookups = [setting for sql, setting in seen if "ANY" in sql.upper() or " IN " in sql.upper()]
    assert lookups and set(lookups) == {"off"}, seen
    assert connection.cursor().connection.execute("SHOW enable_seqscan").fetchone()[0] == "on"


def test_a_row_the_database_refuses_fails_alone(upload_and_run, monkeypatch):
    write_rows = upload_service._write_rows

    def refusing(organization, rows):
        if any(row.external_ref == "POISON" for row in rows):
            raise DataError("value too long for type character varying(255)")
        return write_rows(organization, rows)

    monkeypatch.setattr(upload_service, "_write_rows", refusing)
    upload = upload_and_run(csv_manifest([{"external_ref": ref, "title": ref} for ref in ("A", "POISON", "B")]))
    assert errors_of(upload) == [
        (2, "POISON", "", "The row cannot be stored: value too long for type character varying(255)"),
    ]
    assert sorted(Work.objects.values_list("external_ref", flat=True)) == ["A", "B"]
    assert (upload.created_count, upload.failed_count, upload.processed_rows) == (2, 1, 3)


def test_committed_rows_are_counted_in_the_metrics(upload_and_run, django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("kyoka_upload_rows_total") or 0
    with django_capture_on_commit_callbacks(execute=True):  # counted once the chunk is committed
        upload_and_run(csv_manifest([
            {"external_ref": "M1", "title": "one"}, {"external_ref": "M2", "title": "two"},
            {"external_ref": "M3", "title": ""},
        ]))
    assert (REGISTRY.get_sample_value("kyoka_upload_rows_total") or 0) - before == 2
