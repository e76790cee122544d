"""Weft settings. Everything comes from the environment; see the README's configuration table."""

from __future__ import annotations

import os
import secrets
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


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


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
    db.setdefault("PASSWORD", "")
    db.setdefault("TIME_ZONE", None)
    db["CONN_MAX_AGE"] = env_int("WEFT_CONN_MAX_AGE", 60)
    db["CONN_HEALTH_CHECKS"] = True
    db["TEST"] = {"NAME": os.environ.get("WEFT_TEST_DB_NAME") or None}
    return db


SECRET_KEY = _secret_key()
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
    "django_q",
    "channels",
    "channels_postgres",
    "engine",
    "api",
    "webui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_postgres.core.PostgresChannelLayer",
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"

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
    SECURE_SSL_REDIRECT = env_bool("WEFT_SSL_REDIRECT", False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# Queues: WEFT_QUEUES (JSON) -> one django-q2 cluster per queue.
WEFT_QUEUES = parse_queues(os.environ.get("WEFT_QUEUES"))
Q_CLUSTER = q_cluster_settings(WEFT_QUEUES)

# Engine
WEFT_LEASE_S = env_int("WEFT_LEASE_S", 30, minimum=3)
WEFT_MAX_NODES = env_int("WEFT_MAX_NODES", 5000, minimum=1)
WEFT_RECOVERY_INTERVAL_S = float(os.environ.get("WEFT_RECOVERY_INTERVAL_S", "1.0"))
WEFT_DEFAULT_RETRY = {
    "max_attempts": env_int("WEFT_DEFAULT_MAX_ATTEMPTS", 3, minimum=1),
    "backoff_s": 1.0,
    "backoff_factor": 2.0,
    "max_backoff_s": 300.0,
    "jitter": 0.1,
    "retry_on": [],
}
# Publish committed events to the channel layer (live UI). Off until websocket consumers exist.
WEFT_PUBLISH_EVENTS = env_bool("WEFT_PUBLISH_EVENTS", False)
WEFT_MAX_LOG_LINES = env_int("WEFT_MAX_LOG_LINES", 1000, minimum=1)
WEFT_MAX_OUTPUT_BYTES = env_int("WEFT_MAX_OUTPUT_BYTES", 1_048_576, minimum=1024)
# Modules imported at start-up that register @weft.task functions and node types.
WEFT_TASK_MODULES = env_list("WEFT_TASK_MODULES", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("WEFT_LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": os.environ.get("WEFT_Q_LOG_LEVEL", "WARNING"), "propagate": True}},
}
