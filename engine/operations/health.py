"""Health for container orchestrators: ``/healthz`` (the process is up) and ``/readyz`` (it can do its job).

Ready means: the database answers, every migration is applied, and every configured queue has a
live worker cluster (a ``runworkers`` heartbeat in ``engine_workerprocess`` within the last
``WORKER_STALE_S`` seconds). ``readiness()`` is the check; the two views are its HTTP face and
need no login.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from engine import statements

log = logging.getLogger(__name__)
SQL = statements.load(__file__, "sql/health.sql")

_migrations_applied = False  # once true it stays true for this process (migrations are not unapplied live)


def readiness() -> dict:
    """``{"ready": bool, "checks": {"database", "migrations", "queues"}}``, each check with ``ok`` and,
    when not ok, an ``error`` saying what is wrong."""
    checks = {"database": _check_database()}
    if checks["database"]["ok"]:
        checks["migrations"] = _check_migrations()
        checks["queues"] = _check_queues()
    else:
        skipped = {"ok": False, "error": "not checked: the database is unreachable"}
        checks["migrations"] = dict(skipped)
        checks["queues"] = dict(skipped)
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


def _check_database() -> dict:
    try:
        with connection.cursor() as cur:
            statements.execute(cur, SQL["ping"], {})
            cur.fetchone()
    except DatabaseError as exc:
        connection.close()
        return {"ok": False, "error": f"database unreachable: {str(exc).strip()[:300]}"}
    return {"ok": True}


def _check_migrations() -> dict:
    global _migrations_applied
    if _migrations_applied:
        return {"ok": True}
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return {"ok": False, "error": f"cannot read the migration history: {str(exc).strip()[:300]}"}
    if plan:
        names = [f"{m.app_label}.{m.name}" for m, _ in plan]
        return {"ok": False, "error": f"{len(names)} migration(s) not applied; run `manage.py migrate`",
                "unapplied": names[:50]}
    _migrations_applied = True
    return {"ok": True}


def _check_queues() -> dict:
    from django.db.models.functions import Now

    from engine.core.queues import WORKER_STALE_S, queue_names
    from engine.models import WorkerProcess

    try:
        live = set(WorkerProcess.objects.filter(last_seen__gt=Now() - timedelta(seconds=WORKER_STALE_S))
                   .values_list("queue", flat=True).distinct())
    except DatabaseError as exc:
        return {"ok": False, "error": f"cannot read the worker registry: {str(exc).strip()[:300]}"}
    missing = [name for name in queue_names() if name not in live]
    if missing:
        command = "manage.py runworkers"
        if len(missing) < len(settings.WEFT_QUEUES):
            command += f" --queues {','.join(missing)}"
        return {"ok": False, "missing": missing,
                "error": f"no live worker cluster for queue(s) {', '.join(missing)} (start `{command}`)"}
    return {"ok": True}


@never_cache
@require_safe
def healthz(request):
    """200 while the process can answer HTTP."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request):
    """200 when ready, else 503; the body says which check failed and why."""
    result = readiness()
    if not result["ready"]:
        log.warning("not ready: %s", "; ".join(c["error"] for c in result["checks"].values() if not c["ok"]))
    body = {"status": "ok" if result["ready"] else "unavailable", "checks": result["checks"]}
    return JsonResponse(body, status=200 if result["ready"] else 503)


class ProbeMiddleware:
    """Answers /healthz, /readyz and /metrics before any other middleware.

    Orchestrators and scrapers address a server by its IP, a Host header WEFT_ALLOWED_HOSTS rightly
    refuses for pages; these answers build no URLs from the Host, and need no session, CSRF or login.
    """

    def __init__(self, get_response):
        from engine.operations.metrics_view import metrics_view

        self.get_response = get_response
        self.probes = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}

    def __call__(self, request):
        view = self.probes.get(request.path_info)
        return view(request) if view is not None else self.get_response(request)


# The tables whose statistics keep the hot path's cached plans right: they grow and churn with every step.
VACUUMED_TABLES = ("engine_run", "engine_steprun", "engine_attempt", "engine_event", "engine_journalentry",
                   "django_q_ormq")


def vacuum_problems() -> list[str]:
    """What stops autovacuum from keeping Weft's busiest tables in shape, in words for an operator.

    Without it they bloat with dead rows, and the workers' prepared statements keep the plans they made
    when the tables were small (a plan is made again only when ANALYZE changes a table's statistics): on a
    new installation that means sequential scans of tables that have since grown."""
    with connection.cursor() as cur:
        statements.execute(cur, SQL["autovacuum_settings"], {})
        autovacuum, track_counts = cur.fetchone()
        statements.execute(cur, SQL["autovacuum_disabled"], {"tables": list(VACUUMED_TABLES)})
        disabled = [row[0] for row in cur.fetchall()]
    problems = []
    if not autovacuum or not track_counts:
        problems.append(f"the server has {'autovacuum' if not autovacuum else 'track_counts'} off: Weft's tables "
                        "bloat and its cached plans go stale as they grow; turn it on, or run VACUUM (ANALYZE) "
                        "on them regularly")
    if disabled:
        problems.append(f"autovacuum is disabled on {', '.join(disabled)} (autovacuum_enabled=false): these "
                        "tables bloat and the plans made for them go stale; re-enable it, or VACUUM (ANALYZE) "
                        "them regularly")
    return problems
