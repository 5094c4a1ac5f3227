"""Run a study notebook the way every pipeline stage does: papermill, then a self-contained HTML copy.

    python -m hgstudy.study.notebooks notebooks/20_train.ipynb reports/train/hg-0.ipynb \\
        --html reports/html/train/hg-0.html -p variant hg -p seed 0 -y "overrides: {}"

What the notebook prints (the training engine's progress lines) reaches the console as it is produced, and
nothing else (no cell-by-cell log, no tables or figure reprs), so `dvc repro` shows each stage's progress. The
kernel talks to papermill over IPC sockets rather than TCP (no network port, and no "running over TCP without
encryption" warning). The HTML copy (nbconvert's lab template) embeds its figures and loads nothing from the
network, so it reads offline and on any code host.
"""

from __future__ import annotations

import argparse
import ast
import logging
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill
import yaml
from jupyter_client.manager import AsyncKernelManager
from nbconvert import HTMLExporter
from traitlets import default

from hgstudy.core.errors import UserError
from hgstudy.core.files import write_text


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels listen on IPC sockets (files) instead of TCP ports, in a folder of their own
    (jupyter's default, `kernel-ipc-N` in the working folder, is shared by kernels run side by side)."""

    @default("transport")
    def _default_transport(self):
        return "ipc"

    @default("ip")
    def _default_ip(self):
        self._sockets = tempfile.TemporaryDirectory(prefix="hgstudy-kernel-")  # removed with this manager
        return str(Path(self._sockets.name) / "kernel")


def to_html(notebook: Path, html: Path) -> Path:
    """A self-contained HTML rendering of an executed notebook (figures embedded, no network resources)."""
    exporter = HTMLExporter(embed_images=True, mathjax_url="", require_js_url="")
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return write_text(html, re.sub(r'<script src=""></script>\s*', "", body))


TYPES = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "list": list, "None": type(None)}


def _types(annotation: ast.expr) -> set[type]:
    """The types of an annotation written as `int`, `list[int]`, `int | None`, ..."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _types(annotation.left) | _types(annotation.right)
    if isinstance(annotation, ast.Subscript):
        return _types(annotation.value)
    none = isinstance(annotation, ast.Constant) and annotation.value is None
    name = "None" if none else getattr(annotation, "id", "")
    if name not in TYPES:
        raise UserError(f"parameter annotation {ast.unparse(annotation)!r}: use {', '.join(TYPES)} joined by |")
    return {TYPES[name]}


def declared_parameters(notebook) -> dict[str, set[type]]:
    """{name: accepted types} of a notebook's cell tagged `parameters`: a name's annotation (`n: int | None = 3`),
    else the type of its default."""
    cells = nbformat.read(notebook, as_version=4).cells
    cell = next((c for c in cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise UserError(f"{notebook} has no cell tagged 'parameters'")
    declared = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.AnnAssign):
            declared[node.target.id] = _types(node.annotation)
        elif isinstance(node, ast.Assign):
            declared[node.targets[0].id] = {type(ast.literal_eval(node.value))}
    return declared


def _accepts(types: set[type], value) -> bool:
    if isinstance(value, bool):  # a bool is an int to isinstance, never to a notebook
        return bool in types
    return isinstance(value, tuple(types)) or (float in types and isinstance(value, int))


def check_parameters(notebook, parameters: dict) -> None:
    """Each parameter must be one the notebook declares, of its type (the string "false" is not a bool)."""
    declared = declared_parameters(notebook)
    for name, value in parameters.items():
        if name not in declared:
            raise UserError(f"parameter {name}: {notebook} has no such parameter; it has {', '.join(declared)}")
        if not _accepts(declared[name], value):
            kinds = " or ".join(sorted(t.__name__.replace("NoneType", "null") for t in declared[name]))
            raise UserError(f"parameter {name}: must be {kinds}, got {value!r} ({type(value).__name__})")


def run(notebook, output, parameters: dict, html=None, timeout: int | None = 7200) -> Path:
    """Execute `notebook` into `output` with `parameters` (papermill), then write its HTML copy to `html`."""
    check_parameters(notebook, parameters)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # The console gets what the notebook prints (a run's progress lines), not papermill's cell-by-cell log, the
    # reprs of figures and tables, or nbconvert's remarks on the HTML copy.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    logging.getLogger("papermill").setLevel(logging.ERROR)  # its parameter guess misreads annotations; checked above
    try:
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                                   log_output=False, stdout_file=sys.stdout, stderr_file=sys.stderr,
                                   progress_bar=False, execution_timeout=timeout,
                                   kernel_manager_class=IPCKernelManager)
    except papermill.PapermillExecutionError as exc:
        raise UserError(f"{notebook} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); the executed "
                        f"notebook with the traceback is {output}") from exc
    if html:
        to_html(output, Path(html))
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hgstudy.study.notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--html", help="also write a self-contained HTML copy here")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a parameter, its value read as YAML (as papermill's -p)")
    parser.add_argument("-y", action="append", default=[], metavar="YAML", help="parameters as a YAML mapping")
    args = parser.parse_args(argv)
    parameters = {name: yaml.safe_load(value) for name, value in args.p}
    for text in args.y:
        parameters.update(yaml.safe_load(text) or {})
    try:
        run(args.notebook, args.output, parameters, args.html)
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
