"""axes/ is the ground floor: it must not import tlgan, api or torch."""

from __future__ import annotations

import subprocess
import sys


def test_axes_imports_no_upper_layers() -> None:
    code = ("import sys\n"
            "import axes.maths, axes.fitting, axes.bundle, axes.bundle_attach, axes.samples, "
            "axes.sample_writer, axes.heads, axes.plots\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'tlgan', 'api', 'torch', 'matplotlib', 'sklearn', 'statsmodels'})\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
