"""Settings read from TLGAN_* variables: unknown ones and keys that cannot work are refused
at start, with one line naming the variable (exit code 2 from `tlgan serve`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from api.settings import OTHER_VARIABLES, Settings, check_environment, load_settings
from tlgan_base.domain_errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {f"TLGAN_{name.upper()}" for name in Settings.model_fields}


def test_a_mistyped_setting_is_refused_naming_it_and_the_closest_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLGAN_MAXCOUNT", "3")
    monkeypatch.setenv("TLGAN_FOO", "1")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert msg.startswith("environment: unknown settings TLGAN_FOO, TLGAN_MAXCOUNT (did you "
                          "mean TLGAN_MAX_COUNT?)"), msg
    assert "\n" not in msg


def test_the_projects_own_variables_and_settings_are_accepted() -> None:
    check_environment({**dict.fromkeys(OTHER_VARIABLES, "1"), **dict.fromkeys(SETTINGS, "1"),
                       "PATH": "/bin", "tlgan_max_count": "3"})
    with pytest.raises(ConfigError, match=r"TLGAN_SERVICE_HOST \(a Kubernetes service link"):
        check_environment({"TLGAN_SERVICE_HOST": "10.0.0.1"})
    with pytest.raises(ConfigError, match=r"tlgan_bundel \(did you mean TLGAN_BUNDLE\?\)"):
        check_environment({"tlgan_bundel": "x"})


def test_every_tlgan_variable_the_repository_mentions_is_a_setting_or_listed() -> None:
    """Scripts, tests, CI, Docker and Kubernetes files: a TLGAN_* variable any of them reads
    (or sets for the service) must not stop the service at start."""
    files = [p for p in REPO.rglob("*") if p.is_file()
             and not any(part.startswith(".venv") or part in (".git", "__pycache__",
                                                                ".pytest_cache", ".mypy_cache",
                                                                ".ruff_cache")
                         for part in p.relative_to(REPO).parts)
             and p.suffix in ("", ".py", ".sh", ".yaml", ".yml", ".md", ".toml", ".json",
                              ".js", ".html", ".cfg", ".txt")
             and p != Path(__file__).resolve()]  # this file names mistyped ones
    assert any(p.name == "run" for p in files) and any(p.name == "Dockerfile" for p in files)
    seen: set[str] = set()
    for path in files:
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        seen.update(re.findall(r"\bTLGAN_[A-Z][A-Z0-9_]*[A-Z0-9]\b", text))
    # Kubernetes service links, named in deployment.yaml to explain why they are turned off
    seen.discard("TLGAN_SERVICE_HOST")
    assert {"TLGAN_REQUIRE_BROWSER", "TLGAN_VENV", "TLGAN_PUBLISH"} <= seen
    assert sorted(seen - SETTINGS - set(OTHER_VARIABLES)) == []


@pytest.mark.parametrize("key, words", [
    ("   ", "is blank"),
    ("\t", "is blank"),
    (" secret", "leading or trailing whitespace"),
    ("ключ", "must be printable ASCII"),
    ("caf\u00e9", "must be printable ASCII"),
    ("a\nb", "must be printable ASCII"),
])
def test_an_api_key_that_cannot_work_is_refused(monkeypatch: pytest.MonkeyPatch, key: str,
                                                words: str) -> None:
    monkeypatch.setenv("TLGAN_API_KEY", key)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith("api_key (TLGAN_API_KEY): ") and words in str(err.value)
    assert key.strip() == "" or key not in str(err.value)  # the key is never echoed


def test_an_empty_api_key_means_none_and_a_good_one_is_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLGAN_API_KEY", "")
    assert load_settings().api_key is None
    monkeypatch.setenv("TLGAN_API_KEY", "s3cret key-1")
    key = load_settings().api_key
    assert key is not None and key.get_secret_value() == "s3cret key-1"


def test_serve_exits_2_with_one_line_for_a_bad_environment(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TLGAN_MAXCOUNT": "3", "TLGAN_API_KEY": "  "}
    proc = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", "0"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["Error: environment: unknown setting TLGAN_MAXCOUNT (did you mean "
                     "TLGAN_MAX_COUNT?); `tlgan serve --help` lists every TLGAN_* setting"]
    env = {"PATH": "/usr/bin:/bin", "TLGAN_API_KEY": "   "}
    proc = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--port", "0"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("Error: api_key (TLGAN_API_KEY): is blank")
