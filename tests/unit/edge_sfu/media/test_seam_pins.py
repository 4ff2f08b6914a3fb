"""The libraries whose internals ``edge_sfu.media.seam`` uses are pinned tightly in
pyproject.toml, and the installed ones are inside those pins."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[4] / "pyproject.toml"
# Every library seam.PRIVATE_NAMES names an owner in (one minor release each), and PyAV,
# whose frames the seam hands on (one major release: PyAV makes a major release where others
# would make a minor one).
SEAM_LIBRARIES = {"aiortc": "minor", "aioice": "minor", "pylibsrtp": "minor", "av": "major"}


def dependencies() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    reqs = (Requirement(line) for line in project["dependencies"])
    return {req.name.lower(): req for req in reqs}


@pytest.mark.parametrize(("name", "span"), SEAM_LIBRARIES.items())
def test_seam_library_is_pinned_to_one_release(name: str, span: str) -> None:
    req = dependencies().get(name)
    assert req is not None, f"{name} is not a declared dependency"
    uppers = [Version(s.version) for s in req.specifier if s.operator == "<"]
    lowers = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert len(uppers) == 1 and len(lowers) == 1, f"{req}: needs one lower and one upper bound"
    lower = lowers[0]
    if span == "minor":
        expected = Version(f"{lower.major}.{lower.minor + 1}")
    else:
        expected = Version(f"{lower.major + 1}")
    assert uppers[0] == expected, f"{req}: allows more than one {span} release"


@pytest.mark.parametrize("name", SEAM_LIBRARIES)
def test_installed_seam_library_is_inside_its_pin(name: str) -> None:
    req = dependencies()[name]
    assert req.specifier.contains(version(name)), f"{name} {version(name)} is outside {req}"
