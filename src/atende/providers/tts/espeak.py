"""espeak-ng TTS through its command-line program (GPL, kept out of process).

Robotic, but it speaks dozens of languages (pt-br, es, fr …) in a few milliseconds.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave

from atende.media.audio import SAMPLE_RATE
from atende.media.resample import resample

_VOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+\-]{0,39}")


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

    @classmethod
    def checked(cls, voice: str) -> EspeakTTS:
        """The voice if espeak-ng has it; ValueError otherwise (a name like en-us, pt-br or
        en+f3)."""
        if not _VOICE.fullmatch(voice):
            raise ValueError(f"{voice[:40]!r} is not an espeak-ng voice name (e.g. en-us)")
        tts = cls(voice)
        probe = subprocess.run([tts.exe, "-v", voice, "-q", "--", "."], capture_output=True,
                               timeout=10)
        if probe.returncode != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r} (see espeak-ng --voices)")
        return tts

    def synthesize(self, text: str) -> bytes:
        proc = subprocess.run(
            [self.exe, "-v", self.voice, "-s", str(self.rate_wpm), "--stdout", "--", text],
            capture_output=True, check=True, timeout=30,
        )
        with wave.open(io.BytesIO(proc.stdout)) as w:
            rate = w.getframerate()
            frames = w.readframes(w.getnframes())
        return resample(frames, rate, SAMPLE_RATE)
