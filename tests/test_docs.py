"""The docs run as written: ```python blocks are doctests sharing one namespace per page, and
```console blocks are `$ mxugen …` commands whose exit code must be 0 and whose output must match
the text shown (``...`` matches anything). Blocks run in page order, in an empty directory."""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
from pathlib import Path

import pytest

from mxugen.cli import main
from verif.runner import sim_build_root

pytestmark = pytest.mark.rtl  # Verilator builds or place and route

DOCS = sorted((Path(__file__).parent.parent / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.M | re.S)


def _commands(block: str):
    """``(command, expected output)`` pairs of a console block."""
    pairs = []
    for line in block.splitlines():
        if line.startswith("$ "):
            pairs.append([line[2:], ""])
        elif pairs:
            pairs[-1][1] += line + "\n"
    return pairs


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_examples(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MXUGEN_SIM_BUILD", str(sim_build_root()))  # share simulator builds
    monkeypatch.chdir(tmp_path)
    parser, checker = doctest.DocTestParser(), doctest.OutputChecker()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    namespace: dict = {}
    for number, (language, body) in enumerate(FENCE.findall(path.read_text())):
        if language == "python":
            test = parser.get_doctest(body, namespace, f"{path.name} block {number}",
                                      str(path), 0)
            runner.run(test, clear_globs=False)
            namespace = test.globs  # DocTest works on a copy; the next block continues it
        elif language == "console":
            for command, expected in _commands(body):
                words = shlex.split(command)
                assert words[0] == "mxugen", f"{path.name}: only mxugen commands run: {command}"
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    code = main(words[1:])
                assert code == 0, f"{path.name}: `{command}` exited {code}"
                assert checker.check_output(expected, out.getvalue(), doctest.ELLIPSIS), \
                    f"{path.name}: `{command}` printed:\n{out.getvalue()}\nexpected:\n{expected}"
    assert runner.failures == 0, f"{runner.failures} doctest failures in {path.name}"
