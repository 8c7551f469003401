"""Real peers from Debian packages: install them when we can, skip (or fail in CI) otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

PACKAGES = {"baresip": "baresip-core", "kamailio": "kamailio", "kamcmd": "kamailio", "sox": "sox",
            "espeak-ng": "espeak-ng"}


def require(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path:
        return path
    package = PACKAGES.get(program, program)
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                       check=False, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
        if path:
            return path
    message = f"{program} is needed: apt-get install {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI must run the real-peer tests)")
    pytest.skip(message)
    raise AssertionError("unreachable")
