"""/healthz and /readyz (the real-worker case, a queue without a cluster, is in test_workers.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from engine.models import WorkerProcess
from engine.operations import health

pytestmark = pytest.mark.django_db


def heartbeat(*queues: str, age_s: float = 0) -> None:
    seen = timezone.now() - timedelta(seconds=age_s)
    for i, queue in enumerate(queues):
        WorkerProcess.objects.create(host="h", pid=100 + i, queue=queue, workers=1, started_at=seen, last_seen=seen)


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_every_queue_has_a_live_cluster(client, settings):
    heartbeat(*settings.WEFT_QUEUES)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ok", "checks": {"database": {"ok": True}, "migrations": {"ok": True},
                                                          "queues": {"ok": True}}}


def test_not_ready_names_the_queues_without_a_cluster(client, settings):
    heartbeat("default")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["queues"]["missing"] == [q for q in settings.WEFT_QUEUES if q != "default"]
    assert "no live worker cluster for queue(s)" in body["checks"]["queues"]["error"]
    assert body["checks"]["database"] == {"ok": True}


def test_a_cluster_that_stopped_heartbeating_does_not_count(client, settings):
    from engine.core.queues import WORKER_STALE_S

    heartbeat(*settings.WEFT_QUEUES, age_s=WORKER_STALE_S + 5)
    body = client.get("/readyz").json()
    assert body["checks"]["queues"]["missing"] == list(settings.WEFT_QUEUES)


def test_unapplied_migrations_make_it_not_ready(client, settings, monkeypatch):
    heartbeat(*settings.WEFT_QUEUES)
    monkeypatch.setattr(health, "_migrations_applied", False)
    latest = MigrationRecorder.Migration.objects.filter(app="engine").order_by("-applied", "-id").first()
    latest.delete()
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["migrations"]
    assert check["ok"] is False and check["unapplied"] == [f"engine.{latest.name}"]
    assert "manage.py migrate" in check["error"]


def test_an_unreachable_database_is_reported(client, monkeypatch):
    from django.db import OperationalError

    class Unreachable:
        def cursor(self):
            raise OperationalError("connection refused")

        def close(self):
            pass

    monkeypatch.setattr(health, "connection", Unreachable())
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": False, "error": "database unreachable: connection refused"}
    assert checks["queues"]["error"] == "not checked: the database is unreachable"


def test_probes_answer_whatever_host_they_address(settings):
    """Kubelets and scrapers send the pod's IP as Host; pages still refuse it."""
    from django.test import Client

    heartbeat(*settings.WEFT_QUEUES)
    by_ip = Client(HTTP_HOST="10.1.2.3:8000")
    assert by_ip.get("/healthz").status_code == 200
    assert by_ip.get("/readyz").status_code == 200
    assert by_ip.get("/metrics").status_code == 200
    assert by_ip.get("/accounts/login/").status_code == 400


def test_vacuum_problems_name_what_keeps_autovacuum_off():
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT current_setting('autovacuum')::bool AND current_setting('track_counts')::bool")
        server_on = cur.fetchone()[0]
        cur.execute("ALTER TABLE engine_event SET (autovacuum_enabled = false)")
    problems = health.vacuum_problems()
    assert any("disabled on engine_event " in p for p in problems), problems
    assert any("the server has" in p for p in problems) == (not server_on)
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE engine_event RESET (autovacuum_enabled)")
    assert not any("disabled on" in p for p in health.vacuum_problems())
