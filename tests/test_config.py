"""config.toml: loading, strict keys and types, secrets from the environment, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import Config, load_config, parse_config
from digest.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

MINIMAL = """
[site]
name = "Test"
url = "https://example.com"
sender = "Test <digest@example.com>"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_repo_config_loads() -> None:
    config = load_config(REPO / "config.toml")
    assert isinstance(config, Config)
    assert config.site.timezone == "Asia/Seoul"
    assert config.site.language == "ko"
    assert [s.name for s in config.sources] == ["haebom"]
    assert config.sources[0].replay is True
    assert Path(config.sources[0].url).is_file()
    assert {t.key for t in config.themes} == {"ai", "economy", "humanities", "policy", "work"}
    assert config.theme("ai").title_for("en") == "AI"
    assert config.smtp.timeout == 30.0 and isinstance(config.smtp.timeout, float)
    assert all(p.is_file() for p in config.subscribers.files)


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.site.timezone == "UTC"
    assert config.selection.max_posts == 10
    assert config.smtp.embedded
    assert config.sources == () and config.themes == ()


def test_unknown_top_level_key_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "colour = 'red'\n" + MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "unknown key 'colour'" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_nested_key_names_its_full_path(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
[[sources]]
name = "a"
url = "a.atom"

[[sources]]
name = "b"
url = "b.atom"
colour = "blue"
"""
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"unknown key 'sources\[1\]\.colour'") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_unknown_key_in_first_source(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[sources]]\nname = "a"\nurl = "a.atom"\ncolour = "x"\n'
    with pytest.raises(ConfigError, match=r"'sources\[0\]\.colour'"):
        load_config(write(tmp_path, text))


def test_unknown_key_in_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'smtp\.hostname'"):
        load_config(write(tmp_path, MINIMAL + '\n[smtp]\nhostname = "x"\n'))


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ("[selection]\nmax_posts = '10'", "selection.max_posts", "an integer"),
        ("[selection]\nmax_posts = true", "selection.max_posts", "an integer"),
        ("[smtp]\nport = 2.5", "smtp.port", "an integer"),
        ("[summary]\nprefer_description = 'yes'", "summary.prefer_description", "true or false"),
        ("[smtp]\ntimeout = 'slow'", "smtp.timeout", "a number"),
        ("[store]\npath = 3", "store.path", "path string"),
        ("[subscribers]\nfiles = 'a.csv'", "subscribers.files", "must be a list"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, extra: str, key: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL + "\n" + extra + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert repr(key) in message
    assert expected in message
    assert str(path) in message


def test_wrong_type_in_list_item(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[themes]]\nkey = "ai"\ntitle = "AI"\nkeywords = ["ai", 3]\n'
    with pytest.raises(ConfigError, match=r"'themes\[0\]\.keywords\[1\]' must be a string"):
        load_config(write(tmp_path, text))


def test_integer_accepted_for_float(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "\n[smtp]\ntimeout = 5\n"))
    assert config.smtp.timeout == 5.0


def test_missing_required_key(tmp_path: Path) -> None:
    text = '[site]\nname = "x"\nurl = "https://x"\n'
    with pytest.raises(ConfigError, match=r"missing key 'site\.sender'"):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[selection\nmax_posts = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(MINIMAL.encode() + b"\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_unknown_site_timezone(tmp_path: Path) -> None:
    text = MINIMAL.replace('sender = "Test', 'timezone = "Mars/Olympus"\nsender = "Test')
    with pytest.raises(ConfigError, match=r"'site\.timezone'.*'Mars/Olympus'"):
        load_config(write(tmp_path, text))


def test_unknown_schedule_timezone(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[schedules]]\nname = "w"\ncron = "0 8 * * mon"\ntimezone = "Nowhere"\n'
    with pytest.raises(ConfigError, match=r"'schedules\[0\]\.timezone'.*unknown timezone"):
        load_config(write(tmp_path, text))


THEME = '\n[[themes]]\nkey = "ai"\ntitle = { ko = "인공지능", en = "AI" }\nkeywords = ["AI"]\n'


def test_unknown_theme_in_schedule(tmp_path: Path) -> None:
    text = MINIMAL + THEME + '\n[[schedules]]\nname = "w"\ncron = "0 8 * * mon"\n'
    text += 'themes = ["ai", "sports"]\n'
    with pytest.raises(ConfigError, match=r"'schedules\[0\]\.themes'.*'sports'"):
        load_config(write(tmp_path, text))


def test_known_theme_in_schedule(tmp_path: Path) -> None:
    text = MINIMAL + THEME + '\n[[schedules]]\nname = "w"\ncron = "daily at 07:30"\n'
    text += 'themes = ["ai"]\n'
    config = load_config(write(tmp_path, text))
    assert config.schedules[0].themes == ("ai",)
    with pytest.raises(ConfigError, match="unknown theme 'sports'"):
        config.theme("sports")


@pytest.mark.parametrize("cron", ["0 25 * * *", "every tuesday", "weekly on funday at 08:00"])
def test_bad_cron_expression(tmp_path: Path, cron: str) -> None:
    text = MINIMAL + f'\n[[schedules]]\nname = "w"\ncron = "{cron}"\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "'schedules[0].cron'" in message
    assert str(path) in message


def test_bad_cron_message_shows_the_expression_and_the_forms(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[schedules]]\nname = "w"\ncron = "0 25 * * *"\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "'0 25 * * *'" in message
    assert "weekly on monday at 08:00" in message


def test_password_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = MINIMAL + '\n[smtp]\nhost = "mail.example.com"\nport = 587\n'
    text += 'password_env = "DIGEST_TEST_SMTP_PASSWORD"\n'
    config = load_config(write(tmp_path, text))
    monkeypatch.delenv("DIGEST_TEST_SMTP_PASSWORD", raising=False)
    assert config.smtp.password() is None
    monkeypatch.setenv("DIGEST_TEST_SMTP_PASSWORD", "s3cret")
    assert config.smtp.password() == "s3cret"


def test_password_without_env_name_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"site": {"name": "x", "url": "u", "sender": "s"}}, Path("c.toml"))
    assert config.smtp.password() is None


def test_password_in_the_file_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL + '\n[smtp]\nhost = "mail.example.com"\nport = 587\npassword = "s3cret"\n'
    with pytest.raises(ConfigError, match=r"unknown key 'smtp\.password'"):
        load_config(write(tmp_path, text))


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = (
        MINIMAL
        + """
[store]
path = "var/db.sqlite3"

[smtp]
maildir = "var/mail"

[subscribers]
files = ["subs/a.csv", "/abs/b.csv"]

[templates]
folder = "tpl"

[[sources]]
name = "local"
url = "feeds/x.atom"

[[sources]]
name = "remote"
url = "https://example.com/feed.atom"
"""
    )
    config = load_config(write(folder, text))
    base = folder.resolve()
    assert config.store.path == base / "var/db.sqlite3"
    assert config.smtp.maildir == base / "var/mail"
    assert config.subscribers.files == (base / "subs/a.csv", Path("/abs/b.csv"))
    assert config.templates.folder == base / "tpl"
    assert config.sources[0].url == str(base / "feeds/x.atom")
    assert config.sources[1].url == "https://example.com/feed.atom"


def test_default_paths_resolve_too(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.store.path == tmp_path.resolve() / "var/digest.sqlite3"
    assert config.templates.folder is None


def test_parse_config_from_dict_checks_like_a_file(tmp_path: Path) -> None:
    data = {"site": {"name": "x", "url": "u", "sender": "s"}, "sources": [{"name": "a"}]}
    with pytest.raises(ConfigError, match=r"missing key 'sources\[0\]\.url'"):
        parse_config(data, tmp_path / "c.toml")
    with pytest.raises(ConfigError, match=r"missing \[site\]"):
        parse_config({}, tmp_path / "c.toml")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ('[[sources]]\nname = "a"\nurl = "a"\n[[sources]]\nname = "a"\nurl = "b"', "duplicate"),
        ('[[sources]]\nname = "a"\nurl = "a"\nkind = "sitemap"', "unknown kind"),
        ('[[themes]]\nkey = "x"\ntitle = "X"', "needs keywords or tags"),
        ('[smtp]\nhost = "mail.example.com"', "'smtp.port' must be set"),
        ('[summary]\nalgorithm = "magic"', "'summary.algorithm'"),
    ],
)
def test_validation(tmp_path: Path, extra: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, MINIMAL + "\n" + extra + "\n"))


def test_unknown_site_language(tmp_path: Path) -> None:
    text = MINIMAL.replace("[site]", '[site]\nlanguage = "fr"')
    with pytest.raises(ConfigError, match=r"'site\.language'"):
        load_config(write(tmp_path, text))


def test_top_level_path_key_is_unknown(tmp_path: Path) -> None:
    # `path` is filled in by the loader; a `path` written in the file must not be silently dropped.
    with pytest.raises(ConfigError, match="unknown key 'path'"):
        load_config(write(tmp_path, 'path = "elsewhere.toml"\n' + MINIMAL))
