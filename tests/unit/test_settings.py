"""Settings: defaults that work, `APP_*` variables, an optional .env, flags win."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.__main__ import build_parser, make_settings
from app.settings import Settings, parse_rate


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory: no stray .env, ./data is under tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_work_with_nothing_set(in_tmp: Path) -> None:
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path("data")
    assert settings.repositories_dir == Path("data") / "repositories"
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{in_tmp / 'data' / 'app.db'}"
    assert settings.redis_url is None and settings.database_url is None
    assert settings.cors_origins == [] and settings.trusted_proxies == []
    assert settings.rate_limit == "5000/hour"
    assert settings.rate_limit_anonymous == "600/hour"
    assert settings.auth_failure_limit == "10/minute"
    assert settings.log_format == "text"


def test_environment_with_app_prefix(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_HOST", "10.9.8.7")
    monkeypatch.setenv("APP_PORT", "9000")
    monkeypatch.setenv("APP_DATA_DIR", str(in_tmp / "elsewhere"))
    monkeypatch.setenv("APP_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("APP_LOG_FORMAT", "json")
    monkeypatch.setenv("PORT", "1")  # unprefixed: ignored
    settings = Settings()
    assert (settings.host, settings.port) == ("10.9.8.7", 9000)
    assert settings.data_dir == in_tmp / "elsewhere"
    assert settings.resolved_database_url == "postgresql+asyncpg://u@h/db"
    assert settings.log_format == "json"


def test_dotenv_file_and_environment_wins(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / ".env").write_text("APP_PORT=7000\nAPP_HOST=10.1.2.3\nOTHER=x\n")
    assert (Settings().port, Settings().host) == (7000, "10.1.2.3")
    monkeypatch.setenv("APP_PORT", "7100")
    assert Settings().port == 7100


def test_command_line_flags_win(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "9000")
    monkeypatch.setenv("APP_DATA_DIR", "/from/env")
    parser = build_parser()
    flagged = make_settings(parser.parse_args(["serve", "--port", "0", "--data-dir", "d"]))
    assert (flagged.port, flagged.data_dir) == (0, Path("d"))
    unflagged = make_settings(parser.parse_args(["serve"]))
    assert (unflagged.port, unflagged.data_dir) == (9000, Path("/from/env"))
    repo = make_settings(parser.parse_args(["repo", "create", "a/b", "--data-dir", "x"]))
    assert repo.data_dir == Path("x")


def test_lists_from_comma_separated_values(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_CORS_ORIGINS", "http://a.example, https://b.example:8443,")
    monkeypatch.setenv("APP_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    settings = Settings()
    assert settings.cors_origins == ["http://a.example", "https://b.example:8443"]
    assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1", "::1"]
    assert Settings(cors_origins=["*"]).cors_origins == ["*"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_PORT", "65536"),
        ("APP_PORT", "-1"),
        ("APP_PORT", "http"),
        ("APP_CORS_ORIGINS", "a.example"),
        ("APP_CORS_ORIGINS", "http://a.example/path"),
        ("APP_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("APP_TRUSTED_PROXIES", "proxy.local"),
        ("APP_RATE_LIMIT", "5000"),
        ("APP_RATE_LIMIT", "5000/fortnight"),
        ("APP_AUTH_FAILURE_LIMIT", "ten/minute"),
        ("APP_LOG_FORMAT", "xml"),
        ("APP_LOG_LEVEL", "LOUD"),
        ("APP_SECRET_KEY", "too-short"),
        ("APP_GIT_MAX_PUSH_BYTES", "10"),
    ],
)
def test_bad_values_are_refused(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    field = name.removeprefix("APP_").lower()
    assert field in {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("5000/hour", (5000, 3600)),
        ("10/minute", (10, 60)),
        (" 3 / second ", (3, 1)),
        ("1/day", (1, 86400)),
    ],
)
def test_parse_rate(text: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(text) == parsed


def test_secret_key_from_settings_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 40)
    assert settings.load_secret_key() == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_secret_key_generated_once_and_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = Settings(data_dir=data).load_secret_key()
    assert len(key) >= 32
    path = data / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=data).load_secret_key() == key
    assert [p.name for p in data.iterdir()] == ["secret_key"]  # no temporary file left


def test_secret_key_race_gives_everyone_the_same_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: Settings(data_dir=data).load_secret_key(), range(16)))
    assert len(keys) == 1
    assert [p.name for p in data.iterdir()] == ["secret_key"]


def test_unusable_secret_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(ValueError, match="no usable key"):
        Settings(data_dir=tmp_path).load_secret_key()
