"""`.env.example` is generated from the settings classes (`make env-example`) and never stale."""

from __future__ import annotations

import re

from deploy import env_example


def test_env_example_is_up_to_date() -> None:
    assert env_example.TARGET.read_text() == env_example.render(), (
        ".env.example is stale: run `make env-example`"
    )


def test_every_setting_appears_once_with_its_meaning() -> None:
    text = env_example.render()
    assigned = re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE)
    assert len(assigned) == len(set(assigned))
    assert env_example.settings_variables() - env_example.COMMENTED_OUT <= set(assigned)
    for var in env_example.COMMENTED_OUT:  # written, but commented out
        assert re.search(rf"^# {var}=", text, flags=re.MULTILINE), var
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if lines and re.match(r"^[A-Z][A-Z0-9_]+=", lines[-1]):
            assert lines[0].startswith("# "), f"no comment above {lines[-1]}"


def test_defaults_are_the_settings_defaults() -> None:
    text = env_example.render()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE))
    assert values["SMOLTBOT_GATEWAY_PORT"] == "8787"
    assert values["SMOLTBOT_STREAM_PREFIX"] == "smoltbot:"
    assert values["SMOLTBOT_BUS_MAX_BYTES"] == str(512 * 1024 * 1024)
    assert values["SMOLTBOT_GATEWAY_UPSTREAM_READ_TIMEOUT_S"] == "600"
    assert values["DATABASE_URL"] == ""  # required: no default to copy
    assert values["SMOLTBOT_IMAGE_REGISTRY"] == "localhost"  # compose.yaml's own variables


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys) -> None:
    stale = tmp_path / ".env.example"
    stale.write_text("# old\n")
    monkeypatch.setattr(env_example, "TARGET", stale)
    assert env_example.main(["--check"]) == 1
    assert "make env-example" in capsys.readouterr().err
    assert env_example.main([]) == 0
    assert env_example.main(["--check"]) == 0
