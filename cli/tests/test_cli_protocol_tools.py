"""``smoltbot aap verify|drift`` and ``smoltbot aip check`` on the §7 reference fixtures
(libs/analysis/tests/fixtures), their exit codes (0 passed, 1 failed, 2 bad input), the one-line
errors, and the commands docs/operations.md shows in "Card authoring: offline checks".
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from smoltbot_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "libs" / "analysis" / "tests" / "fixtures"
OFFLINE = FIXTURES / "cli"
SECTION = "## Card authoring: offline checks"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smoltbot: ")
    for needle in needles:
        assert needle in lines[0]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [str(c["name"]) for c in cases]


# --- aap verify -----------------------------------------------------------------------------------

AAP_CASES = fixture("aap_verification.json")["cases"]


@pytest.mark.parametrize("case", AAP_CASES, ids=_ids(AAP_CASES))
def test_aap_verify_on_the_reference_vectors(case: dict[str, Any], tmp_path: Path) -> None:
    card = write(tmp_path, "card.json", case["card"])
    trace = write(tmp_path, "trace.json", case["trace"])
    result = run("aap", "verify", card, trace)
    assert result.exit_code == (0 if case["verified"] else 1), result.output
    document = json.loads(result.stdout)
    assert document["verified"] is case["verified"]
    assert [(v["type"], v["severity"]) for v in document["violations"]] == [
        (v["type"], v["severity"]) for v in case["violations"]
    ]
    expected = ("proceed", "review") if case["verified"] else ("deny",)
    assert document["recommended_action"] in expected


def _unified(card: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in card.items() if k not in ("aap_version", "autonomy_envelope")}
    out["card_version"] = "unified/2026-04-26"
    out["autonomy"] = card["autonomy_envelope"]
    out["audit"] = out.pop("audit_commitment")
    return out


@pytest.mark.parametrize("case", AAP_CASES, ids=_ids(AAP_CASES))
def test_aap_verify_reads_the_unified_shape_alike(case: dict[str, Any], tmp_path: Path) -> None:
    trace = write(tmp_path, "trace.json", case["trace"])
    legacy = run("aap", "verify", write(tmp_path, "legacy.json", case["card"]), trace)
    unified = run("aap", "verify", write(tmp_path, "unified.json", _unified(case["card"])), trace)
    assert unified.exit_code == legacy.exit_code
    assert json.loads(unified.stdout)["violations"] == json.loads(legacy.stdout)["violations"]


def test_aap_verify_merges_an_org_template() -> None:
    card, trace = OFFLINE / "card.json", OFFLINE / "trace_export.json"
    alone = run("aap", "verify", card, trace)
    assert alone.exit_code == 0, alone.output
    merged = run("aap", "verify", card, trace, "--org-template", OFFLINE / "org_template.json")
    assert merged.exit_code == 1
    assert [v["type"] for v in json.loads(merged.stdout)["violations"]] == ["forbidden_action"]


# --- aap drift ------------------------------------------------------------------------------------

DRIFT = fixture("aap_drift.json")


@pytest.mark.parametrize("case", DRIFT["cases"], ids=_ids(DRIFT["cases"]))
def test_aap_drift_on_the_reference_sequences(case: dict[str, Any], tmp_path: Path) -> None:
    card = write(tmp_path, "card.json", DRIFT["card"])
    traces = write(tmp_path, "traces.json", case["traces"])
    threshold = case.get("similarity_threshold")
    extra = [] if threshold is None else ["--similarity-threshold", str(threshold)]
    result = run("aap", "drift", card, traces, *extra)
    assert result.exit_code == (1 if case["alerts"] else 0), result.output
    document = json.loads(result.stdout)
    assert document["traces_analyzed"] == len(case["traces"])
    assert len(document["alerts"]) == case["alerts"]
    if case["alerts"]:
        alert = document["alerts"][0]
        assert alert["trace_ids"] == case["trace_ids"]
        assert alert["analysis"]["drift_direction"] == case["direction"]


# --- aip check ------------------------------------------------------------------------------------

ANALYSES = fixture("aip_analyses.json")


@pytest.mark.parametrize("case", ANALYSES["cases"], ids=_ids(ANALYSES["cases"]))
def test_aip_check_on_the_reference_analyses(case: dict[str, Any], tmp_path: Path) -> None:
    analysis = write(tmp_path, "analysis.json", case["response"])
    result = run("aip", "check", "--card", OFFLINE / "card.json", analysis)
    assert result.exit_code == (0 if case["verdict"] == "clear" else 1), result.output
    checkpoint = json.loads(result.stdout)
    assert checkpoint["verdict"] == case["verdict"]
    assert checkpoint["recommended_action"] == case["action"]
    assert checkpoint["proceed"] is case["proceed"]
    assert [c["category"] for c in checkpoint.get("concerns", [])] == case["categories"]
    assert checkpoint["card_id"] == "ac-shopping-agent"
    assert checkpoint["checkpoint_id"].startswith("ic-")


@pytest.mark.parametrize("case", ANALYSES["errors"], ids=_ids(ANALYSES["errors"]))
def test_aip_check_rejects_invalid_analyses(case: dict[str, Any], tmp_path: Path) -> None:
    analysis = write(tmp_path, "analysis.json", case["response"])
    result = run("aip", "check", "--card", OFFLINE / "card.json", analysis)
    assert_one_line_error(result, "not a valid analysis response", case["error"])


def test_aip_check_hashes_the_thinking_when_given(tmp_path: Path) -> None:
    thinking = write(tmp_path, "thinking.txt", "I will read the docs, then answer the question.")
    result = run(
        "aip", "check", "--card", OFFLINE / "card.json", OFFLINE / "analysis_clear.json",
        "--thinking", thinking, "--provider", "gemini",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    checkpoint = json.loads(result.stdout)
    assert re.fullmatch(r"[0-9a-f]{64}", checkpoint["thinking_block_hash"])
    assert checkpoint["provider"] == "gemini"
    assert checkpoint["analysis_metadata"]["thinking_tokens_original"] == 12


# --- bad input: one line on stderr, exit 2 ---------------------------------------------------


def _commands(card: Path, other: Path) -> list[list[str | Path]]:
    return [
        ["aap", "verify", card, other],
        ["aap", "drift", card, other],
        ["aip", "check", "--card", card, other],
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["verify", "drift", "check"])
def test_missing_files(index: int, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert_one_line_error(run(*_commands(missing, OFFLINE / "card.json")[index]), "nope.json")
    other = _commands(OFFLINE / "card.json", missing)[index]
    assert_one_line_error(run(*other), "nope.json", "no such file")


@pytest.mark.parametrize("index", [0, 1, 2], ids=["verify", "drift", "check"])
def test_malformed_json_card(index: int, tmp_path: Path) -> None:
    broken = write(tmp_path, "broken.json", '{"card_id": "ac-1",')
    result = run(*_commands(broken, OFFLINE / "trace_compliant.json")[index])
    assert_one_line_error(result, "broken.json", "not valid JSON", "line 1")


@pytest.mark.parametrize(
    ("index", "other", "needle"),
    [
        (0, '{"trace_id": "tr-1", "action": {"name": "x"}}', "decision must be an object"),
        (0, "[1, 2]", "expected a JSON object, got an array"),
        (1, '{"trace_id": "tr-1"}', "expected a JSON array, got an object"),
        (1, '[{"action": {"name": "x"}, "decision": {}}]', "at index 0"),
    ],
    ids=["trace-no-decision", "trace-array", "traces-object", "traces-item"],
)
def test_wrong_shapes(index: int, other: str, needle: str, tmp_path: Path) -> None:
    path = write(tmp_path, "other.json", other)
    assert_one_line_error(run(*_commands(OFFLINE / "card.json", path)[index]), needle)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["verify", "drift", "check"])
def test_wrong_shape_card(index: int, tmp_path: Path) -> None:
    not_a_card = write(tmp_path, "list.json", "[]")
    result = run(*_commands(not_a_card, OFFLINE / "traces_steady.json")[index])
    assert_one_line_error(result, "not an alignment card")
    no_envelope = write(tmp_path, "bare.json", {"card_id": "ac-1", "values": {"declared": []}})
    assert_one_line_error(
        run(*_commands(no_envelope, OFFLINE / "traces_steady.json")[index]), "autonomy"
    )


def test_the_real_executable_exits_2_without_a_traceback(tmp_path: Path) -> None:
    smoltbot = Path(sys.executable).parent / "smoltbot"
    broken = write(tmp_path, "broken.json", "{not json")
    done = subprocess.run(
        [str(smoltbot), "aap", "verify", str(broken), str(OFFLINE / "trace_compliant.json")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


# --- docs/operations.md ---------------------------------------------------------------------


def section_commands() -> list[str]:
    """The ``bash`` command lines of the operations guide's card-authoring section."""
    text = (ROOT / "docs" / "operations.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start : end if end != -1 else len(text)]
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```", body, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            code = line.split("  #", 1)[0].strip()
            if code and not code.startswith("#"):
                out.append(code)
    return out


def test_the_operations_guide_shows_each_command() -> None:
    shown = section_commands()
    for needed in ("smoltbot aap verify", "smoltbot aap drift", "smoltbot aip check"):
        assert any(c.startswith(needed) for c in shown), needed
    assert any("--org-template" in c for c in shown)


@pytest.mark.parametrize("command", section_commands())
def test_the_operations_guide_commands_run(command: str) -> None:
    """The same way tests/test_operations_docs.py runs them (from the repo root, bash)."""
    assert shlex.split(command)[0] == "smoltbot"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
