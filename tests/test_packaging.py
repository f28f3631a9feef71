"""The wheel ships the library only: `lopt_tf` and its weight sets, no top-level `problems` or `train`."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_wheel_holds_only_lopt_tf_and_its_weights(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")  # setuptools < 70 builds wheels with it
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), source / name)
    for name in ("lopt_tf", "problems", "train"):
        shutil.copytree(os.path.join(REPO, name), source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("lopt_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"lopt_tf"}
    shipped = {n for n in names if n.startswith("lopt_tf/weights/")}
    expected = {f"lopt_tf/weights/{f}" for f in os.listdir(os.path.join(REPO, "lopt_tf", "weights"))
                if f.endswith((".npz", ".md"))}
    assert expected and shipped == expected
    assert "lopt_tf/weights/init.npz" in shipped

