"""The package as users install it: the wheel holds every file of the package folder, and the
tests that read packaged data also run against the installed wheel (`.ci/run` installs it in a
virtualenv of its own and runs them from outside the checkout, with `E2I_FIX_INSTALLED=1`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import e2i_fix

from conftest import ROOT

PACKAGE = ROOT / "e2i_fix"


def package_files(folder: Path) -> set[str]:
    """The files of the package folder, as wheel names (`e2i_fix/data/images.json`), bytecode aside."""
    return {p.relative_to(folder.parent).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")}


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return {n for n in z.namelist() if n.startswith("e2i_fix/") and not n.endswith("/")}


def build_wheel(src: Path, dest: Path, pyproject: str | None = None) -> Path:
    """A wheel built from a copy of the sources (a checkout's `build/` may hold stale files)."""
    shutil.copytree(PACKAGE, src / "e2i_fix", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "README.md", src / "README.md")
    (src / "pyproject.toml").write_text(pyproject or (ROOT / "pyproject.toml").read_text())
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "--disable-pip-version-check", "--wheel-dir", str(dest), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = dest.glob("e2i_fix-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `.ci/run` built and installed (`E2I_FIX_WHEEL`), else one built here."""
    given = os.environ.get("E2I_FIX_WHEEL")
    if given:
        return Path(given)
    tmp = tmp_path_factory.mktemp("wheel")
    return build_wheel(tmp / "src", tmp / "dist")


def test_the_wheel_holds_every_file_of_the_package(wheel: Path) -> None:
    expected = package_files(PACKAGE)
    assert "e2i_fix/data/scaffold/frontend.Dockerfile" in expected
    assert "e2i_fix/data/report.schema.json" in expected
    got = wheel_files(wheel)
    assert expected - got == set(), "left out of the wheel (pyproject's package-data)"
    assert got - expected == set(), "in the wheel but not in the package folder"
    with zipfile.ZipFile(wheel) as z:
        (entry_points,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        assert "e2i-fix = e2i_fix._main:entry" in z.read(entry_points).decode()


def test_a_data_file_left_out_of_package_data_is_caught(tmp_path: Path) -> None:
    """package-data as it was before the scaffold was in the wheel (`data/*` matches no
    sub-folder): the comparison above names what is missing."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    narrow = pyproject.replace('e2i_fix = ["data/*", "data/**/*"]', 'e2i_fix = ["data/*"]')
    assert narrow != pyproject
    wheel = build_wheel(tmp_path / "src", tmp_path / "dist", narrow)
    missing = package_files(tmp_path / "src" / "e2i_fix") - wheel_files(wheel)
    assert missing == {"e2i_fix/data/scaffold/frontend.Dockerfile", "e2i_fix/data/scaffold/nginx.conf"}


def test_the_package_under_test_is_the_installed_one() -> None:
    """Under `.ci/run`'s second run the tests import the wheel's package from site-packages,
    not this checkout (no editable install, no checkout on sys.path)."""
    if not os.environ.get("E2I_FIX_INSTALLED"):
        pytest.skip("the installed-wheel run of .ci/run sets E2I_FIX_INSTALLED")
    where = Path(e2i_fix.__file__).resolve().parent
    assert where.parent == Path(sysconfig.get_paths()["purelib"]).resolve(), where
    assert not where.is_relative_to(ROOT)
    for name in package_files(PACKAGE):
        assert (where.parent / name).is_file(), f"{name} is not installed"
