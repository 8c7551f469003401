"""Real peers from Debian packages: install them when we can, skip (or fail in CI) otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

PACKAGES = {"baresip": "baresip-core", "kamailio": "kamailio", "kamcmd": "kamailio", "sox": "sox",
            "espeak-ng": "espeak-ng", "ip": "iproute2", "unshare": "util-linux",
            "chromium": "chromium"}


def _install(package: str) -> None:
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                       check=False, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI must run the real-peer tests)")
    pytest.skip(message)


def require(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path:
        return path
    package = PACKAGES.get(program, program)
    _install(package)
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path:
        return path
    _missing(f"{program} is needed: apt-get install {package}")
    raise AssertionError("unreachable")


def require_package(package: str) -> None:
    """A package that brings no program of its own (e.g. a kamailio module)."""
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True).stdout
    if "install ok installed" in status:
        return
    _install(package)
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True).stdout
    if "install ok installed" not in status:
        _missing(f"Debian package {package} is needed")
