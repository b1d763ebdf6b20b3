"""The chapters' setup: which kernels have a front end, and the TensorFlow notices the notebooks drop."""

from __future__ import annotations

import subprocess
import sys

from utils import config
from utils.setup import has_front_end

FILTER_CHILD = """
import os, sys, time
sys.path.insert(0, {root!r})
from utils.setup import drop_native_notices
drop_native_notices()
os.write(2, b"E0000 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. Falling back\\n")
os.write(2, b"E0000 something TensorFlow really wants you to see\\n")
os.write(2, b"a last line without its newline")
time.sleep(0.3)
"""


def test_the_dt_bool_notice_is_dropped_and_every_other_native_line_passes():
    child = subprocess.run([sys.executable, "-c", FILTER_CHILD.format(root=str(config.REPO_ROOT))], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert "DT_BOOL" not in child.stderr
    assert "something TensorFlow really wants you to see" in child.stderr
    assert "a last line without its newline" in child.stderr


def test_a_kernel_has_a_front_end_only_when_a_server_or_an_editor_started_it(monkeypatch):
    for name in ("JPY_SESSION_NAME", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not has_front_end()  # nbconvert, nbval, a plain python: headless
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/notebooks/04_training_and_prediction.ipynb")
    assert has_front_end()  # JupyterLab's server sets it for the kernels it starts
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.setenv("VSCODE_PID", "1234")
    assert has_front_end()
