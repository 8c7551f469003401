"""espeak-ng TTS through its command-line program (GPL, kept out of process).

Robotic, but it speaks dozens of languages (pt-br, es, fr …) in a few milliseconds.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

from atende.media.audio import SAMPLE_RATE
from atende.media.resample import resample


class EspeakTTS:
    """A voice spoken by espeak-ng (run as its own program), for languages the bundled Piper
    voice lacks."""

    name = "espeak"

    def __init__(self, voice: str = "en-us", rate_wpm: int = 165) -> None:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
        self.exe = exe
        self.voice = voice
        self.rate_wpm = rate_wpm

    def synthesize(self, text: str) -> bytes:
        proc = subprocess.run(
            [self.exe, "-v", self.voice, "-s", str(self.rate_wpm), "--stdout", "--", text],
            capture_output=True, check=True, timeout=30,
        )
        with wave.open(io.BytesIO(proc.stdout)) as w:
            rate = w.getframerate()
            frames = w.readframes(w.getnframes())
        return resample(frames, rate, SAMPLE_RATE)
