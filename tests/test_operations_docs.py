"""Every command docs/operations.md shows in a ``bash`` block is run here against a real stack
(`smoltbot up --fake-upstream` on private ports, database and stream prefix), and must succeed.

Commands that need what this machine does not have (Docker, Kubernetes) are only parse-checked,
and so is plumbing around them (``cp``); a few long-running or heavy commands are run by other
targets, named below. Anything else — every ``smoltbot``, ``make``, ``curl``, ``psql``,
``pg_dump`` — runs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

from tests.conftest import ADMIN_TOKEN, Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
RUN = {"smoltbot", "make", "curl", "psql", "pg_dump", "pg_restore", "python3"}
NOT_RUN_HERE = {"docker", "helm", "kubectl", "podman", "cp"}
RUN_ELSEWHERE = {
    "make images": "make test-deploy builds the images and runs the stack from them",
    "make run": "make smoke runs `make run FAKE=1` and stops it",
}
_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def commands() -> list[str]:
    """Every command line of every ``bash`` block (comments stripped)."""
    out = []
    for block in _BLOCK.findall(DOC.read_text()):
        for line in block.splitlines():
            code = line.split("  #", 1)[0].strip()
            if code and not code.startswith("#"):
                out.append(code)
    return out


def program(command: str) -> str:
    return shlex.split(command)[0]


def elsewhere(command: str) -> str | None:
    return next((why for prefix, why in RUN_ELSEWHERE.items() if command.startswith(prefix)), None)


def test_the_doc_has_commands_and_each_kind_is_known() -> None:
    found = commands()
    assert len(found) > 20
    unknown = {program(c) for c in found} - RUN - NOT_RUN_HERE
    assert unknown == set(), "decide whether these run here"


@pytest.mark.parametrize("command", [c for c in commands() if program(c) in NOT_RUN_HERE])
def test_commands_not_run_here_parse(command: str) -> None:
    checked = subprocess.run(
        ["bash", "-n", "-c", command], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.timeout(600)  # every documented command, in order: a few minutes on a busy machine
def test_commands_run_by_the_docs_test(stack: Stack, tmp_path: Path) -> None:
    """One stack, every runnable command in document order (later ones may rely on earlier)."""
    client = anthropic.Anthropic(
        api_key="sk-docs-test", base_url=f"{stack.url('gateway')}/anthropic", max_retries=0
    )
    client.messages.create(
        model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "docs"}]
    )
    env = {
        **stack.env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SMOLTBOT_API_URL": stack.url("api"),
        "SMOLTBOT_GATEWAY_URL": stack.url("gateway"),
        "SMOLTBOT_ADMIN_TOKEN": ADMIN_TOKEN,
        "BACKUP_DIR": str(tmp_path),
    }
    ran = 0
    for command in commands():
        if program(command) not in RUN or elsewhere(command):
            continue
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        ran += 1
    assert ran >= 20


def test_commands_run_elsewhere_are_few_and_named() -> None:
    skipped = [c for c in commands() if elsewhere(c)]
    assert skipped
    assert all(program(c) == "make" for c in skipped)
