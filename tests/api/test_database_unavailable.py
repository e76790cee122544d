"""While the database cannot be reached: the API answers 503 ``database_unavailable`` with ``Retry-After``,
the pages a 503 page that says so; never 500, never a traceback, and nothing is half-written."""

from __future__ import annotations

import socket

import pytest
from django.db import connections

from engine.models import Event, Run, Workflow
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for, simple_definition
from tests.webui.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """Points the default connection at a closed port (``down``) and back (``up``)."""

    def __init__(self):
        self.conn = connections["default"]
        self.saved = dict(self.conn.settings_dict)

    def down(self) -> None:
        self.conn.close()
        self.conn.settings_dict.update(HOST="127.0.0.1", PORT=closed_port())

    def up(self) -> None:
        self.conn.close()
        self.conn.settings_dict.clear()
        self.conn.settings_dict.update(self.saved)


@pytest.fixture
def database():
    db = Database()
    yield db
    db.up()


@pytest.mark.parametrize("method, path", [("get", "/api/workflows/"), ("post", "/api/workflows/"),
                                          ("get", "/api/runs/"), ("post", "/api/workflows/validate/")])
def test_the_api_answers_503_with_retry_after_while_the_database_is_down(database, method, path):
    workflow_save(definition=simple_definition("before"))
    api = client_for("designer")
    assert api.get("/api/workflows/").status_code == 200
    database.down()
    body = {"definition": simple_definition("during")}
    r = getattr(api, method)(path, body, format="json") if method == "post" else api.get(path)
    assert r.status_code == 503, r.content
    assert r["Content-Type"].startswith("application/json") and int(r["Retry-After"]) > 0
    error = r.json()["error"]
    assert error["code"] == "database_unavailable" and "database" in error["message"]
    assert "Traceback" not in r.content.decode() and "psycopg" not in r.content.decode()


def test_nothing_is_written_by_a_request_refused_while_the_database_is_down(database):
    api = client_for("designer")
    api.get("/api/workflows/")
    database.down()
    assert api.post("/api/workflows/", {"definition": simple_definition("during")}, format="json").status_code == 503
    database.up()
    assert not Workflow.objects.filter(slug="during").exists()
    assert api.post("/api/workflows/", {"definition": simple_definition("during")}, format="json").status_code == 201


@pytest.mark.parametrize("path", ["/", "/workflows/", "/runs/", "/accounts/login/"])
def test_pages_show_a_database_unavailable_page_while_the_database_is_down(client, database, path):
    client.force_login(make_user("viewer", "viewer"))
    assert client.get("/workflows/").status_code == 200
    database.down()
    r = client.get(path)
    assert r.status_code == 503
    assert r["Content-Type"].startswith("text/html") and int(r["Retry-After"]) > 0
    page = r.content.decode()
    assert "Database unavailable" in page and "Traceback" not in page and "Server Error" not in page


class DiesOnInsert:
    """A trigger that ends the inserting session's connection (as a server that goes away mid-request does) when a
    row is inserted into ``table``, after the request's earlier writes of the same transaction."""

    def __init__(self, table: str):
        self.table = table

    def __enter__(self):
        with connections["default"].cursor() as cur:
            cur.execute("CREATE OR REPLACE FUNCTION weft_test_die() RETURNS trigger LANGUAGE plpgsql AS $$ "
                        "BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$")
            cur.execute(f"CREATE TRIGGER weft_test_die BEFORE INSERT ON {self.table} "
                        "FOR EACH ROW EXECUTE FUNCTION weft_test_die()")
        return self

    def __exit__(self, *exc):
        connections["default"].close()
        with connections["default"].cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS weft_test_die ON {self.table}")
            cur.execute("DROP FUNCTION IF EXISTS weft_test_die()")


def test_a_connection_lost_between_the_writes_of_a_request_leaves_none_of_them():
    """Saving a workflow writes the workflow, then its version; starting a run of a workflow with run concurrency
    writes the run, then its steps. The connection dies at the second write: 503, and the first is not there."""
    api = client_for("operator")
    designer = client_for("designer")
    with DiesOnInsert("engine_workflowversion"):
        r = designer.post("/api/workflows/", {"definition": simple_definition("cut")}, format="json")
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable", r.content
    assert not Workflow.objects.filter(slug="cut").exists()
    assert designer.post("/api/workflows/", {"definition": simple_definition("cut")}, format="json").status_code == 201

    workflow_save(definition={**simple_definition("cut-run"), "concurrency": {"limit": 1}})
    with DiesOnInsert("engine_steprun"):
        r = api.post("/api/workflows/cut-run/runs/", {"inputs": {}}, format="json")
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable", r.content
    assert not Run.objects.filter(workflow__slug="cut-run").exists()
    assert not Event.objects.filter(run__workflow__slug="cut-run").exists()
    assert api.post("/api/workflows/cut-run/runs/", {"inputs": {}}, format="json").status_code == 201
