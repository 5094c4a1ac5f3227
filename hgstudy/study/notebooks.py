"""Run a study notebook the way every pipeline stage does: papermill, then a self-contained HTML copy.

    python -m hgstudy.study.notebooks notebooks/20_train.ipynb reports/train/hg-0.ipynb \\
        --html reports/html/train/hg-0.html -p variant hg -p seed 0 -y "overrides: {}"

The notebook's printed output (the training engine's progress lines, tables) reaches the console as it is
produced (papermill's log_output), so `dvc repro` shows each stage's progress. The kernel talks to papermill
over IPC sockets rather than TCP (no network port, and no "running over TCP without encryption" warning).
The HTML copy (nbconvert's lab template) embeds its figures and loads nothing from the network, so it reads
offline and on any code host.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
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
    """A kernel manager whose kernels listen on IPC sockets (files) instead of TCP ports."""

    @default("transport")
    def _default_transport(self):
        return "ipc"


def to_html(notebook: Path, html: Path) -> Path:
    """A self-contained HTML rendering of an executed notebook (figures embedded, no network resources)."""
    exporter = HTMLExporter(embed_images=True, mathjax_url="", require_js_url="")
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return write_text(html, re.sub(r'<script src=""></script>\s*', "", body))


def run(notebook, output, parameters: dict, html=None, timeout: int | None = 7200) -> Path:
    """Execute `notebook` into `output` with `parameters` (papermill), then write its HTML copy to `html`."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("papermill").setLevel(logging.INFO)
    try:
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                                   log_output=True, progress_bar=False, execution_timeout=timeout,
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
