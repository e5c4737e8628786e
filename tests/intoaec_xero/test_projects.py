"""Which tracking category is a tenant's project: every way it is chosen, on both backends.

The dimension is resolved from the tenant's synced tracking categories, its row in
``project_dimension_overrides`` and the Xero connection's ``project_*`` extras, then applied by
the transforms of every table with lines (invoice, credit-note and journal lines).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest
from intoaec_xero import projects
from intoaec_xero.errors import ConfigurationError
from intoaec_xero.extract import extract_stream
from intoaec_xero.load import load_stream
from intoaec_xero.projects import DEFAULT_DIMENSION, ProjectConfig, ProjectDimension
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import (
    credit_note_lines,
    invoice_lines,
    journal_lines,
    project_dimension_overrides,
    tracking_categories,
)
from intoaec_xero.settings import XeroSettings, read_extras
from intoaec_xero.state import StreamState
from intoaec_xero.streams import STREAMS, get_stream
from intoaec_xero.transform import transform_record
from sqlalchemy import insert, select

from .quality.records import TENANT, invoice, journal
from .test_extract_paging import FakeXero

OTHER = "tenant-other"
PROJECT_ID = "0a1b2c3d-0000-4000-8000-000000000001"
JOB_ID = "0a1b2c3d-0000-4000-8000-000000000002"
PHASE_ID = "0a1b2c3d-0000-4000-8000-000000000003"
DISCIPLINE_ID = "0a1b2c3d-0000-4000-8000-000000000004"


def _categories(engine, *categories: tuple[str, str, str], tenant: str = TENANT) -> None:
    with engine.begin() as conn:
        conn.execute(insert(tracking_categories), [
            {"tenant_id": tenant, "tracking_category_id": id_, "name": name, "status": status}
            for id_, name, status in categories])


def _override(engine, tracking_category: str | None = None, reference_pattern: str | None = None,
              tenant: str = TENANT) -> None:
    with engine.begin() as conn:
        conn.execute(insert(project_dimension_overrides).values(
            tenant_id=tenant, tracking_category=tracking_category, reference_pattern=reference_pattern,
            updated_at=datetime.now(UTC), note="set in a test"))


def _resolve(engine, connection: ProjectConfig | None = None, tenant: str = TENANT,
             run_id: str | None = None) -> ProjectDimension:
    with engine.connect() as conn:
        return projects.resolve(conn, tenant, connection, run_id=run_id or uuid.uuid4().hex)


def _tracking(*items: tuple[str, str] | tuple[str, str, str | None]) -> list[dict[str, str]]:
    """Xero's line tracking: (category name, option[, category id])."""
    return [{"Name": item[0], "Option": item[1], **({"TrackingCategoryID": item[2]} if len(item) > 2 and item[2]
                                                  else {})} for item in items]


def _invoice_project(dimension: ProjectDimension | None, tracking, reference: str | None = "Stage 2") -> str | None:
    record = invoice(1, Reference=reference)
    record["LineItems"][0]["Tracking"] = tracking
    return transform_record("invoices", TENANT, record, dimension)["invoice_lines"][0]["project"]


# -- the default: Project, Projects, Job, Jobs -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Project", "Projects", "Job", "Jobs"])
def test_each_default_name_is_the_project_when_the_organisation_has_it(engine, name):
    _categories(engine, (PROJECT_ID, name, "ACTIVE"), (DISCIPLINE_ID, "Discipline", "ACTIVE"))
    dimension = _resolve(engine)
    tracking = _tracking(("Discipline", "Structural", DISCIPLINE_ID), (name, "P-1042 Harbour Bridge", PROJECT_ID))
    assert _invoice_project(dimension, tracking) == "P-1042 Harbour Bridge"
    assert _invoice_project(dimension, _tracking(("Discipline", "Structural", DISCIPLINE_ID))) is None


def test_the_default_names_are_tried_in_order_of_preference(engine):
    """An organisation with both a "Job" and a "Projects" category: Projects comes first."""
    _categories(engine, (JOB_ID, "Job", "ACTIVE"), (PROJECT_ID, "Projects", "ACTIVE"))
    dimension = _resolve(engine)
    assert dimension.category_ids == {PROJECT_ID}
    assert _invoice_project(dimension, _tracking(("Job", "J-7", JOB_ID), ("Projects", "P-9", PROJECT_ID))) == "P-9"
    assert _invoice_project(dimension, _tracking(("Job", "J-7", JOB_ID))) is None


def test_the_default_names_match_without_case(engine):
    _categories(engine, (JOB_ID, "  JOBS ", "ACTIVE"), (DISCIPLINE_ID, "Discipline", "ACTIVE"))
    dimension = _resolve(engine)
    assert dimension.category_ids == {JOB_ID}
    assert _invoice_project(dimension, _tracking(("JOBS", "J-0042", JOB_ID))) == "J-0042"
    # A line that names the category without its id (older documents, hand-made JSON) still matches by name.
    assert _invoice_project(dimension, _tracking(("jobs", "J-0043"))) == "J-0043"


def test_an_active_category_is_preferred_over_an_archived_one_of_the_same_name(engine):
    _categories(engine, (PROJECT_ID, "Project", "ARCHIVED"), (JOB_ID, "project", "ACTIVE"))
    assert _resolve(engine).category_ids == {JOB_ID}


def test_before_the_categories_are_synced_each_line_is_read_by_the_default_names(engine, caplog):
    dimension = _resolve(engine)
    assert dimension.category_names == DEFAULT_DIMENSION.category_names
    assert _invoice_project(dimension, _tracking(("Discipline", "Civil"), ("jobs", "J-1"))) == "J-1"
    assert _invoice_project(dimension, _tracking(("Job", "J-1"), ("Project", "P-1"))) == "P-1"
    assert _invoice_project(dimension, _tracking(("Discipline", "Civil"))) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_without_a_resolved_dimension_transforms_use_the_default_names():
    assert _invoice_project(None, _tracking(("Projects", "P-3"))) == "P-3"
    assert _invoice_project(None, _tracking(("PROJECT", "P-4"))) == "P-4"


# -- configured on the connection ---------------------------------------------------------------------------------

def test_a_category_configured_by_name_beats_the_default_names(engine):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"), (PHASE_ID, "Cost Centre", "ACTIVE"))
    dimension = _resolve(engine, ProjectConfig(tracking_category="cost centre"))
    assert dimension.category_ids == {PHASE_ID}
    tracking = _tracking(("Project", "P-1", PROJECT_ID), ("Cost Centre", "CC-12", PHASE_ID))
    assert _invoice_project(dimension, tracking) == "CC-12"


def test_a_category_configured_by_id_is_mapped_to_its_name(engine):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"), (PHASE_ID, "Phase", "ACTIVE"))
    dimension = _resolve(engine, ProjectConfig(tracking_category=PHASE_ID.upper()))
    assert dimension.category_ids == {PHASE_ID} and dimension.category_names == ("phase",)
    assert "'Phase'" in dimension.description
    assert _invoice_project(dimension, _tracking(("Project", "P-1", PROJECT_ID), ("Phase", "Ph-2", PHASE_ID))) == "Ph-2"
    assert _invoice_project(dimension, _tracking(("PHASE", "Ph-3"))) == "Ph-3"  # no id on the line: by the name
    assert _invoice_project(dimension, _tracking(("Project", "P-1", PROJECT_ID))) is None


def test_a_configured_category_the_organisation_lacks_is_logged_with_what_it_has(engine, caplog):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"), (DISCIPLINE_ID, "Discipline", "ACTIVE"))
    with caplog.at_level(logging.INFO, logger="intoaec_xero.projects"):
        dimension = _resolve(engine, ProjectConfig(tracking_category="Jobs"))
    assert _invoice_project(dimension, _tracking(("Project", "P-1", PROJECT_ID))) is None
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "'Jobs'" in line and "'Project'" in line and "'Discipline'" in line and TENANT in line


def test_a_reference_pattern_fills_in_lines_without_a_project_option(engine):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"))
    dimension = _resolve(engine, ProjectConfig(reference_pattern=r"\b(J-?\d{4})\b"))
    assert _invoice_project(dimension, [], reference="Job J-2231 stage 2") == "J-2231"
    assert _invoice_project(dimension, _tracking(("Project", "P-1", PROJECT_ID)), reference="J-2231") == "P-1"
    assert _invoice_project(dimension, [], reference="no job number") is None
    assert _invoice_project(dimension, [], reference=None) is None
    # Without a group the whole match is the project.
    whole = _resolve(engine, ProjectConfig(reference_pattern=r"P\d+"))
    assert _invoice_project(whole, [], reference="claim for P204 / March") == "P204"


def test_the_reference_pattern_alone_when_the_organisation_has_no_project_category(engine, caplog):
    _categories(engine, (DISCIPLINE_ID, "Discipline", "ACTIVE"))
    with caplog.at_level(logging.WARNING, logger="intoaec_xero.projects"):
        dimension = _resolve(engine, ProjectConfig(reference_pattern=r"^(\d{5})"))
    tracking = _tracking(("Discipline", "Civil", DISCIPLINE_ID))
    assert _invoice_project(dimension, tracking, reference="22016-A") == "22016"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "Reference pattern" in line and "'Discipline'" in line


# -- the per-tenant override ----------------------------------------------------------------------------------------

def test_the_tenants_override_beats_the_connection(engine):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"), (JOB_ID, "Job", "ACTIVE"))
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"), (JOB_ID, "Job", "ACTIVE"), tenant=OTHER)
    _override(engine, tracking_category="job")
    connection = ProjectConfig(tracking_category="Project")
    tracking = _tracking(("Project", "P-1", PROJECT_ID), ("Job", "J-1", JOB_ID))
    assert _invoice_project(_resolve(engine, connection), tracking) == "J-1"
    assert _invoice_project(_resolve(engine, connection, tenant=OTHER), tracking) == "P-1"  # no override: the extra


def test_an_override_column_left_null_inherits_the_connections(engine):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"), (JOB_ID, "Job", "ACTIVE"))
    _override(engine, reference_pattern=r"^(\w+)/")
    dimension = _resolve(engine, ProjectConfig(tracking_category="Job", reference_pattern=r"(never)"))
    assert dimension.category_ids == {JOB_ID}
    assert _invoice_project(dimension, _tracking(("Job", "J-1", JOB_ID))) == "J-1"
    assert _invoice_project(dimension, [], reference="HB22/claim 4") == "HB22"


def test_an_empty_override_category_turns_tracking_off_for_the_tenant(engine):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"))
    _override(engine, tracking_category="", reference_pattern=r"^(\w+)/")
    dimension = _resolve(engine, ProjectConfig(tracking_category="Project"))
    assert not dimension.category_ids and not dimension.category_names
    assert _invoice_project(dimension, _tracking(("Project", "P-1", PROJECT_ID)), reference="HB22/4") == "HB22"


def test_an_override_pattern_that_is_not_a_regex_is_ignored_and_logged(engine, caplog):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"))
    _override(engine, reference_pattern="(unclosed")
    with caplog.at_level(logging.WARNING, logger="intoaec_xero.projects"):
        dimension = _resolve(engine)
    assert dimension.pattern is None and dimension.category_ids == {PROJECT_ID}
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "(unclosed" in line and "project_dimension_overrides" in line


# -- none found ---------------------------------------------------------------------------------------------------

def test_no_project_category_leaves_project_null_with_one_log_line_per_tenant(engine, caplog):
    _categories(engine, (DISCIPLINE_ID, "Discipline", "ACTIVE"), (PHASE_ID, "Office (legacy)", "ARCHIVED"))
    _categories(engine, (DISCIPLINE_ID, "Region", "ACTIVE"), tenant=OTHER)
    run_id = uuid.uuid4().hex
    with caplog.at_level(logging.INFO, logger="intoaec_xero.projects"):
        for tenant in (TENANT, OTHER):
            for stream in ("invoices", "credit_notes", "journals"):  # each stream resolves; the log says it once
                with engine.connect() as conn:
                    dimension = projects.for_stream(conn, run_id, tenant, get_stream(stream), {})
                assert dimension is not None and not dimension.category_ids and not dimension.category_names
    assert _invoice_project(dimension, _tracking(("Project", "P-1"))) is None
    lines = [r for r in caplog.records if r.name == "intoaec_xero.projects"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
    mine, other = (r.getMessage() for r in lines)
    assert TENANT in mine and "'Discipline'" in mine and "'Office (legacy)'" in mine
    assert OTHER in other and "'Region'" in other
    assert "project_tracking_category" in mine and "project_dimension_overrides" in mine


def test_streams_without_lines_resolve_nothing(engine):
    with engine.connect() as conn:
        for stream in STREAMS.values():
            found = projects.for_stream(conn, "run", TENANT, stream, {})
            assert (found is not None) == stream.project_lines, stream.name
    assert {s.name for s in STREAMS.values() if s.project_lines} >= {"invoices", "credit_notes", "journals"}


# -- one function for every table with lines -----------------------------------------------------------------------

def _credit_note(tracking, reference="Stage 2"):
    return {"CreditNoteID": "cn-1", "Type": "ACCRECCREDIT", "Status": "AUTHORISED", "Reference": reference,
            "Total": 10, "SubTotal": 10, "TotalTax": 0,
            "LineItems": [{"LineItemID": "cnl-1", "LineAmount": 10, "Tracking": tracking}]}


def test_invoice_credit_note_and_journal_lines_get_the_same_project(engine):
    _categories(engine, (JOB_ID, "Job", "ACTIVE"))
    dimension = _resolve(engine, ProjectConfig(reference_pattern=r"^(J\d+)"))
    record = journal(1, Reference="J77 claim")
    record["JournalLines"][1]["TrackingCategories"] = [
        {"Name": "Job", "Option": "J-1", "TrackingCategoryID": JOB_ID, "TrackingOptionID": "o-1"}]
    journal_rows = transform_record("journals", TENANT, record, dimension)["journal_lines"]
    assert [r["project"] for r in journal_rows] == ["J77", "J-1", "J77"]
    assert journal_rows[1]["tracking"] == [{"category": "Job", "option": "J-1", "tracking_category_id": JOB_ID}]
    assert journal_rows[0]["tracking"] == []
    credit = transform_record("credit_notes", TENANT, _credit_note(_tracking(("Job", "J-1", JOB_ID))), dimension)
    assert credit["credit_note_lines"][0]["project"] == "J-1"
    assert _invoice_project(dimension, _tracking(("Job", "J-1", JOB_ID))) == "J-1"


# -- from the connection's extras to the rows -------------------------------------------------------------------

def test_the_connection_extras_are_read_and_checked():
    extras = read_extras({"project_tracking_category": "Job", "project_reference_pattern": r"^(\d+)"},
                         connection="xero_default")
    assert extras == {"project_tracking_category": "Job", "project_reference_pattern": r"^(\d+)"}
    with pytest.raises(ConfigurationError, match="project_tracking_category"):
        read_extras({"project_tracking_category": 7}, connection="xero_default")
    with pytest.raises(ConfigurationError, match="project_reference_pattern .*not a regular expression"):
        XeroSettings(client_id="c", client_secret="s", project_reference_pattern="(")
    built = XeroSettings(client_id="c", client_secret="s", project_tracking_category=" Job ")
    assert ProjectConfig.from_settings(built) == ProjectConfig("Job", None)
    assert not ProjectConfig.from_settings(XeroSettings(client_id="c", client_secret="s"))


def _extract_and_load(engine, tmp_path, stream: str, records: list, settings: XeroSettings | None, run_id: str):
    fake = FakeXero({"Invoices": records} if stream == "invoices" else {"Journals": records})
    if settings is not None:
        fake.settings = settings
    raw = RawStore(tmp_path / "raw")
    extracted = extract_stream(fake, get_stream(stream), TENANT, StreamState(), raw, run_id, full=True)
    # What the load task receives: the manifest's JSON, not the client.
    from intoaec_xero.extract import StreamExtract

    load_stream(engine, raw, run_id, TENANT, get_stream(stream), StreamExtract(**extracted.to_dict()))
    return extracted


def test_the_connections_settings_travel_from_the_extract_to_the_rows(engine, tmp_path):
    _categories(engine, (PROJECT_ID, "Project", "ACTIVE"), (PHASE_ID, "Phase", "ACTIVE"))
    settings = XeroSettings(client_id="c", client_secret="s", project_tracking_category=PHASE_ID,
                            project_reference_pattern=r"^Stage (\d)")
    record = invoice(1)
    record["LineItems"][0]["Tracking"] = _tracking(("Project", "P-1", PROJECT_ID), ("Phase", "Ph-2", PHASE_ID))
    extracted = _extract_and_load(engine, tmp_path, "invoices", [record], settings, "run-settings")
    assert extracted.extra["projects"] == {"tracking_category": PHASE_ID, "reference_pattern": r"^Stage (\d)"}
    journal_record = journal(1)
    journal_record["JournalLines"][0]["TrackingCategories"] = _tracking(("Phase", "Ph-5", PHASE_ID))
    _extract_and_load(engine, tmp_path, "journals", [journal_record], settings, "run-settings")
    with engine.connect() as conn:
        lines = dict(conn.execute(select(invoice_lines.c.line_item_id, invoice_lines.c.project)).all())
        ledger = dict(conn.execute(select(journal_lines.c.journal_line_id, journal_lines.c.project)).all())
    assert lines == {"li-1-1": "Ph-2", "li-1-2": "2"}  # the second line has no tracking: "Stage 2" → 2
    assert ledger == {"jl-1-1": "Ph-5", "jl-1-2": None, "jl-1-3": None}  # journal Reference "INV-0001"


def test_without_settings_the_extract_adds_nothing_and_the_defaults_apply(engine, tmp_path):
    _categories(engine, (JOB_ID, "Jobs", "ACTIVE"))
    record = invoice(1)
    record["LineItems"][0]["Tracking"] = _tracking(("Jobs", "J-9", JOB_ID))
    extracted = _extract_and_load(engine, tmp_path, "invoices", [record], XeroSettings(client_id="c",
                                                                                        client_secret="s"), "run-def")
    assert "projects" not in extracted.extra
    with engine.connect() as conn:
        assert conn.execute(select(invoice_lines.c.project).where(invoice_lines.c.line_item_id == "li-1-1")
                            ).scalar_one() == "J-9"
        assert conn.execute(select(credit_note_lines)).all() == []
