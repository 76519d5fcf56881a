"""The README's test command is what CI runs; keep the two in step."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert command in readme


def test_ci_also_runs_the_team_configuration_the_readme_names():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("MODELREG_TEST_BACKEND=postgres"))
    assert command.replace(".venv/bin/pytest", "").strip() in readme.replace(".venv/bin/pytest", "")
