"""Project hygiene: one dependency list, output-free notebooks, README commands = CI."""

import json
import re
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_exactly_the_pyproject_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_deps = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # Conda brings only the interpreter and pip; every Python package comes from pyproject.toml.
    assert sorted(re.split(r"[=<>]", d)[0] for d in conda_deps) == ["pip", "python"]
    assert len(pip_deps) == 1
    match = re.fullmatch(r"-e \.\[(.*)\]", pip_deps[0])
    assert match, pip_deps
    assert set(match[1].split(",")) == extras


def test_committed_notebooks_carry_no_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
                dirty.append(path.name)
                break
    assert dirty == [], f"strip outputs before committing: {dirty}"


def test_notebooks_are_thin_reports_of_their_stage():
    """A parameters cell, one stage call, and what a reader looks at: no code cell over 12 lines, and no file
    written but through the stage function (no open/to_csv/mkdir/write_* in a notebook)."""
    writes = re.compile(r"\bopen\(|\.to_(csv|json|parquet)\(|\.mkdir\(|\.write_(text|bytes)\(|\bwrite_\w+\(|savefig")
    long, writing = [], []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            code = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
            if len(code.splitlines()) > 12:
                long.append(f"{path.name} cell {i}")
            if writes.search(code):
                writing.append(f"{path.name} cell {i}")
    assert long == [] and writing == [], (long, writing)


def readme_commands():
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", setup, flags=re.S)


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2, commands
    study, tests = commands
    assert "study" in study and "test" in tests
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith(("#", "set "))]
    assert ci[-2:] == [tests.strip(), "bash scripts/paper-dryrun.sh scratch/paper-dryrun"]  # then the paper dry run


def test_readme_layout_lists_every_tracked_top_level_path():
    text = (ROOT / "README.md").read_text()
    layout = text.split("## Layout", 1)[1]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    top = {p.split("/")[0] for p in tracked if not p.startswith(".") or p.startswith((".ci/", ".dvc/"))}
    missing = sorted(t for t in top if t not in layout)
    assert missing == [], f"README layout tree misses {missing}"


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "hgstudy.cli", "summary", "--json", "--stacks", "2"],
                         capture_output=True, text=True, check=True).stdout
    assert set(json.loads(out)) == {"params", "gflops"}


# ------------------------------------------------------------------------------------------- package layout
PACKAGE = ROOT / "hgstudy"
# Rooms from the bottom up: a module may import its own room and rooms of a lower level only (no cycles; model
# and scoring, on the same level, do not import each other).
LEVELS = {"core": 0, "model": 1, "scoring": 1, "data": 2, "mannequin": 3, "datasets": 4, "engine": 5, "study": 6,
          "cli": 7, "__init__": 0}


def package_modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def room(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_package_is_a_few_rooms_of_small_modules():
    """A soft signal (a warning in pytest's summary) past 10 modules a room or 400 lines a file, where a split may
    read better; a failure only far past it, where it certainly would."""
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= 8, sorted(p.name for p in top)
    rooms = {str(f.relative_to(ROOT)): len(list(f.glob("*.py"))) for f in {p.parent for p in package_modules()}}
    lines = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in package_modules()}
    crowded = {k: n for k, n in rooms.items() if n > 10} | {k: n for k, n in lines.items() if n > 400}
    if crowded:
        warnings.warn(f"large rooms (modules) or files (lines), worth a look: {crowded}", stacklevel=1)
    assert {k: n for k, n in rooms.items() if n > 16} == {} and {k: n for k, n in lines.items() if n > 600} == {}


def test_imports_flow_one_way_and_none_hides_in_a_function():
    import ast

    problems = []
    for path in package_modules():
        mine = room(path)
        tree = ast.parse(path.read_text())
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in (n for n in names if n and n.startswith("hgstudy.")):
                theirs = name.split(".")[1]
                if id(node) not in top_level:
                    problems.append(f"{path.relative_to(ROOT)} imports {name} inside a function")
                if theirs != mine and (LEVELS[theirs] > LEVELS[mine]
                                       or (LEVELS[theirs] == LEVELS[mine] and mine != "__init__")):
                    problems.append(f"{path.relative_to(ROOT)} ({mine}) imports {name} ({theirs})")
    assert problems == []


def test_no_code_without_a_caller(tmp_path):
    """vulture (60% confidence: unused functions, methods, classes, variables) over the package and what uses it:
    the notebooks' code, the benchmarks and scripts. Tests do not count as callers; tests/deadcode_whitelist.py
    names what a framework calls."""
    code = [
        "".join(cell["source"]) for notebook in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code"
    ]
    (tmp_path / "notebook_code.py").write_text("\n\n".join(code) + "\n")
    found = subprocess.run(
        [sys.executable, "-m", "vulture", "hgstudy", "benchmarks", "scripts", "notebooks/conftest.py",
         str(tmp_path / "notebook_code.py"), "tests/deadcode_whitelist.py", "--min-confidence", "60"],
        cwd=ROOT, capture_output=True, text=True)
    assert found.stdout == "" and found.returncode == 0, found.stdout + found.stderr

