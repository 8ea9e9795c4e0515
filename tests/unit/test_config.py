"""Settings: environment parsing helpers and database URL normalisation."""

from datetime import timedelta

import pytest

from app import config
from app.config import Config, _database_url, env_bool, env_int, env_str, limits_storage_uri


class TestEnvHelpers:
    def test_env_str_default_when_unset_or_blank(self, monkeypatch):
        monkeypatch.delenv("TENANTRY_T_STR", raising=False)
        assert env_str("TENANTRY_T_STR", "dflt") == "dflt"
        monkeypatch.setenv("TENANTRY_T_STR", "   ")
        assert env_str("TENANTRY_T_STR", "dflt") == "dflt"
        monkeypatch.setenv("TENANTRY_T_STR", "  value ")
        assert env_str("TENANTRY_T_STR", "dflt") == "value"

    @pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "On", " on "])
    def test_env_bool_true(self, monkeypatch, raw):
        monkeypatch.setenv("TENANTRY_T_BOOL", raw)
        assert env_bool("TENANTRY_T_BOOL", False) is True

    @pytest.mark.parametrize("raw", ["0", "false", "No", "OFF"])
    def test_env_bool_false(self, monkeypatch, raw):
        monkeypatch.setenv("TENANTRY_T_BOOL", raw)
        assert env_bool("TENANTRY_T_BOOL", True) is False

    def test_env_bool_default_and_garbage(self, monkeypatch):
        monkeypatch.delenv("TENANTRY_T_BOOL", raising=False)
        assert env_bool("TENANTRY_T_BOOL", True) is True
        monkeypatch.setenv("TENANTRY_T_BOOL", "maybe")
        with pytest.raises(ValueError, match="TENANTRY_T_BOOL"):
            env_bool("TENANTRY_T_BOOL", True)

    def test_env_int(self, monkeypatch):
        monkeypatch.delenv("TENANTRY_T_INT", raising=False)
        assert env_int("TENANTRY_T_INT", 30) == 30
        monkeypatch.setenv("TENANTRY_T_INT", " 45 ")
        assert env_int("TENANTRY_T_INT", 30) == 45

    def test_env_int_garbage_names_the_variable(self, monkeypatch):
        monkeypatch.setenv("TENANTRY_T_INT", "thirty")
        with pytest.raises(ValueError, match="TENANTRY_T_INT"):
            env_int("TENANTRY_T_INT", 30)


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
            ("postgresql://u@db/app?sslmode=require", "postgresql+psycopg://u@db/app?sslmode=require"),
            ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
            ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ],
    )
    def test_postgres_urls_use_psycopg3(self, given, expected):
        assert _database_url(given) == expected

    def test_unset_means_sqlite_under_instance(self):
        url = _database_url(None)
        assert url.startswith("sqlite:///")
        assert url.endswith("instance/tenantry.db")

    def test_config_reads_database_url_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("DATABASE_URL", "postgres://u@db/app")
        monkeypatch.setenv("SECRET_KEY", "s3cret")
        settings = Config()
        assert settings.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@db/app"
        assert settings.SECRET_KEY == "s3cret"

    def test_limits_storage_uri_for_unix_sockets(self):
        assert limits_storage_uri("unix:///tmp/r.sock") == "redis+unix:///tmp/r.sock"
        assert limits_storage_uri("redis://h:6379/0") == "redis://h:6379/0"


class TestConfigDefaults:
    def test_secure_session_defaults(self, monkeypatch):
        monkeypatch.delenv("COOKIE_SECURE", raising=False)
        monkeypatch.delenv("SESSION_IDLE_MINUTES", raising=False)
        settings = Config()
        assert settings.SESSION_COOKIE_NAME == "__Host-tenantry"
        assert settings.SESSION_COOKIE_SECURE is True
        assert settings.SESSION_COOKIE_HTTPONLY is True
        assert settings.SESSION_COOKIE_SAMESITE == "Lax"
        assert settings.SESSION_IDLE_TIMEOUT == timedelta(minutes=30)
        assert settings.SESSION_ABSOLUTE_TIMEOUT == timedelta(hours=12)
        assert settings.DEBUG is False

    def test_insecure_cookies_drop_the_host_prefix(self, monkeypatch):
        monkeypatch.setenv("COOKIE_SECURE", "0")
        settings = Config()
        assert settings.SESSION_COOKIE_NAME == "tenantry"
        assert settings.SESSION_COOKIE_SECURE is False

    def test_redis_url_unset_means_embedded(self, monkeypatch):
        monkeypatch.delenv("REDIS_URL", raising=False)
        settings = Config()
        assert settings.EMBEDDED_REDIS is True
        assert settings.REDIS_URL.startswith("unix://")
        assert settings.RATELIMIT_STORAGE_URI.startswith("redis+unix://")
        monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
        settings = Config()
        assert settings.EMBEDDED_REDIS is False
        assert settings.RATELIMIT_STORAGE_URI == "redis://cache:6379/0"

    def test_as_dict_holds_only_settings(self):
        settings = Config().as_dict()
        assert "SQLALCHEMY_DATABASE_URI" in settings
        assert all(key.isupper() for key in settings)
        assert config.INSTANCE.name == "instance"
