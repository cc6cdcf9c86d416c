"""A small source-filter voice: the audio of the synthetic corpus.

Source: a Rosenberg glottal-flow pulse train rendered cycle by cycle, so jitter
(cycle-to-cycle period perturbation) and shimmer (amplitude perturbation) are real,
plus aspiration noise (breathiness). Filter: a cascade of five formant resonators
(Klatt-style, unity gain at DC) per syllable, with vowel formants scaled by the
actor's vocal-tract length; lip radiation as a first difference; spectral tilt as a
gain in dB per octave above 500 Hz. Prosody: the two RAVDESS statements as syllable
sequences (vowel, consonants, length, stress), speaking rate, declination, pitch
accents and a final fall. All randomness comes from the ``rng`` passed in, so a take
is a pure function of its seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Output sample rate (Hz), as RAVDESS.
SAMPLE_RATE = 48_000
#: Speech RMS (dBFS) of a neutral take at 0 dB actor gain; emotions shift it.
REFERENCE_DBFS = -26.0

# Adult-male vowel formants F1-F3 (Hz), after Hillenbrand et al. (1995); F4, F5 fixed.
VOWELS: dict[str, tuple[float, float, float]] = {
    "I": (430.0, 2030.0, 2680.0),   # kids, sit, king
    "A": (770.0, 1330.0, 2520.0),   # are
    "O": (650.0, 1000.0, 2540.0),   # talk, dogs, door
    "AI": (690.0, 1600.0, 2560.0),  # by (diphthong, mid value)
    "@": (500.0, 1500.0, 2500.0),   # the (schwa)
}
UPPER_FORMANTS = (3500.0, 4500.0)
BANDWIDTHS = (70.0, 100.0, 140.0, 200.0, 260.0)


@dataclass(frozen=True)
class Syllable:
    """One syllable: onset/coda consonant class, vowel key, relative length, stress 0..1.

    Consonant classes: "" none, "p" voiceless stop, "b" voiced stop, "s" voiceless
    fricative, "z" voiced fricative, "n" nasal or liquid.
    """

    onset: str
    vowel: str
    length: float
    stress: float
    coda: str = ""


STATEMENTS: dict[str, tuple[Syllable, ...]] = {
    # "Kids are talking by the door"
    "01": (Syllable("p", "I", 1.0, 1.0, "z"), Syllable("", "A", 0.6, 0.2, "n"),
           Syllable("p", "O", 1.0, 0.9, "n"), Syllable("p", "I", 0.7, 0.2, "n"),
           Syllable("b", "AI", 0.9, 0.4), Syllable("z", "@", 0.5, 0.0),
           Syllable("b", "O", 1.5, 0.8, "n")),
    # "Dogs are sitting by the door"
    "02": (Syllable("b", "O", 1.0, 1.0, "z"), Syllable("", "A", 0.6, 0.2, "n"),
           Syllable("s", "I", 1.0, 0.9), Syllable("p", "I", 0.7, 0.2, "n"),
           Syllable("b", "AI", 0.9, 0.4), Syllable("z", "@", 0.5, 0.0),
           Syllable("b", "O", 1.5, 0.8, "n")),
}

# Consonant durations (s) and voicing level during them.
_CONS_LEN = {"": 0.0, "p": 0.07, "b": 0.05, "s": 0.10, "z": 0.07, "n": 0.06}
_CONS_VOICE = {"": 1.0, "p": 0.0, "b": 0.15, "s": 0.0, "z": 0.35, "n": 0.45}
_CONS_NOISE = {"": 0.0, "p": 0.5, "b": 0.2, "s": 0.35, "z": 0.15, "n": 0.0}


@dataclass(frozen=True)
class VoiceActor:
    """An actor's voice. f0_hz: neutral mean pitch; vtl: formant scale (1 = adult-male
    reference, ~1.17 female); jitter, shimmer: fractions per cycle; breath: aspiration
    ratio; tilt_db: dB/octave above 500 Hz; rate: syllables per second; gain_db: level;
    range_st: pitch-accent size in semitones."""

    f0_hz: float
    vtl: float
    jitter: float
    shimmer: float
    breath: float
    tilt_db: float
    rate: float
    gain_db: float
    range_st: float


def random_actor(rng: np.random.Generator, female: bool) -> VoiceActor:
    """Draw a plausible adult voice (male or female ranges)."""
    return VoiceActor(
        f0_hz=float(rng.uniform(185, 240) if female else rng.uniform(95, 140)),
        vtl=float(rng.uniform(1.10, 1.24) if female else rng.uniform(0.93, 1.07)),
        jitter=float(rng.uniform(0.004, 0.012)),
        shimmer=float(rng.uniform(0.02, 0.06)),
        breath=float(rng.uniform(0.02, 0.07) + (0.02 if female else 0.0)),
        tilt_db=float(rng.uniform(-1.5, 1.5)),
        rate=float(rng.uniform(3.2, 4.4)),
        gain_db=float(rng.uniform(-2.5, 2.5)),
        range_st=float(rng.uniform(2.0, 4.5)),
    )


@dataclass(frozen=True)
class Utterance:
    """A synthesized take: ``samples`` float32 mono at ``sample_rate`` Hz in [-1, 1];
    speech runs from ``onset_s`` to ``offset_s`` (seconds)."""

    samples: np.ndarray
    sample_rate: int
    onset_s: float
    offset_s: float

    @property
    def duration(self) -> float:
        return self.samples.size / self.sample_rate


@dataclass(frozen=True)
class _Segment:
    start: int
    stop: int
    voice: float
    noise: float
    kind: str
    syllable: int


def _segments(sylls: tuple[Syllable, ...], rate: float, start: int, sr: int,
              rng: np.random.Generator) -> list[_Segment]:
    """Lay syllables out in time: onset consonant, vowel, coda consonant."""
    base = 1.0 / rate  # mean syllable duration at this rate (s)
    mean_len = float(np.mean([s.length for s in sylls]))
    out: list[_Segment] = []
    t = start
    for i, s in enumerate(sylls):
        total = base * s.length / mean_len * float(rng.uniform(0.9, 1.1))
        squeeze = float(np.clip(4.2 / rate, 0.7, 1.3))  # consonants shorten at fast rates
        on = _CONS_LEN[s.onset] * squeeze
        co = _CONS_LEN[s.coda] * squeeze
        vowel = max(0.04, total - on - co)
        for kind, dur, is_vowel in ((s.onset, on, False), ("", vowel, True), (s.coda, co, False)):
            n = int(round(dur * sr))
            if n <= 0:
                continue
            voice = 1.0 if is_vowel else _CONS_VOICE[kind]
            noise = 0.0 if is_vowel else _CONS_NOISE[kind]
            out.append(_Segment(t, t + n, voice, noise, "V" if is_vowel else kind, i))
            t += n
    return out


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred running mean over ``width`` samples (same length; cumulative-sum based)."""
    if width < 2:
        return x
    padded = np.concatenate([np.zeros(width // 2 + 1), x, np.zeros(width)])
    csum = np.cumsum(padded)
    return (csum[width:width + x.size] - csum[:x.size]) / width


def _pitch_contour(n: int, sr: int, segments: list[_Segment], sylls: tuple[Syllable, ...],
                   f0_hz: float, shift_st: float, range_st: float,
                   rng: np.random.Generator) -> np.ndarray:
    """F0 in Hz per sample: declination, accents on stressed vowels, final fall, drift."""
    start, stop = segments[0].start, segments[-1].stop
    t = np.arange(n, dtype=np.float64)
    u = np.clip((t - start) / max(1, stop - start), 0.0, 1.0)
    st = shift_st + range_st * (0.5 - u) * 0.8  # declination
    for seg in segments:
        if seg.kind == "V":
            stress = sylls[seg.syllable].stress
            centre = 0.5 * (seg.start + seg.stop)
            width = 0.6 * (seg.stop - seg.start) + 0.02 * sr
            st += range_st * stress * float(rng.uniform(0.7, 1.2)) * np.exp(-0.5 * ((t - centre) / width) ** 2)
    last = [s for s in segments if s.kind == "V"][-1]
    st -= range_st * 0.8 * np.clip((t - last.start) / max(1, last.stop - last.start), 0, 1)
    knots = rng.normal(0.0, 0.35, size=8)
    st += np.interp(u, np.linspace(0, 1, 8), knots)
    return f0_hz * 2.0 ** (st / 12.0)


def _rosenberg(phase: np.ndarray, open_q: float = 0.6, speed_q: float = 2.0) -> np.ndarray:
    """Glottal flow (0..1) over one cycle, phase in [0, 1)."""
    tp = open_q * speed_q / (1.0 + speed_q)
    tn = open_q - tp
    out = np.zeros_like(phase)
    rise = phase < tp
    out[rise] = 0.5 * (1.0 - np.cos(np.pi * phase[rise] / tp))
    fall = (phase >= tp) & (phase < open_q)
    out[fall] = np.cos(0.5 * np.pi * (phase[fall] - tp) / tn)
    return out


def _glottal_source(f0: np.ndarray, voicing: np.ndarray, jitter: float, shimmer: float,
                    sr: int, rng: np.random.Generator, open_q: float = 0.6) -> np.ndarray:
    """Pulse train rendered cycle by cycle with jitter and shimmer (float64, per sample).

    ``open_q``: open quotient; larger (lax, breathy voice) = smoother pulses, weaker
    upper harmonics."""
    n = f0.size
    out = np.zeros(n)
    voiced = np.flatnonzero(voicing > 0.01)
    if voiced.size == 0:
        return out
    pos = float(voiced[0])
    end = float(voiced[-1])
    while pos < end:
        i = int(pos)
        period = sr / f0[i] * (1.0 + jitter * float(rng.standard_normal()))
        period = max(period, sr / 800.0)
        amp = voicing[i] * (1.0 + shimmer * float(rng.standard_normal()))
        if amp > 0.01:
            lo, hi = int(np.ceil(pos)), min(n, int(np.ceil(pos + period)))
            phase = (np.arange(lo, hi) - pos) / period
            out[lo:hi] += amp * _rosenberg(phase, open_q)
        pos += period
    return out


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer >= n (FFT sizes with small prime factors are fast)."""
    best = 1 << int(np.ceil(np.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            k = p35 * (1 << max(0, int(np.ceil(np.log2(n / p35)))))
            best = min(best, k) if k >= n else best
            p35 *= 3
        p5 *= 5
    return best


def _formant_response(formants: tuple[float, ...], n: int, sr: int, widen: float) -> np.ndarray:
    """Frequency response on the ``rfft`` grid of length ``n`` of a cascade of two-pole
    resonators (Klatt-style, unity gain at DC): the formant filter, applied by FFT."""
    z1 = np.exp(-2j * np.pi * np.fft.rfftfreq(n, 1.0 / sr) / sr)  # z^-1
    response = np.ones(z1.size, complex)
    for f, bw in zip(formants, BANDWIDTHS):
        f = min(f, 0.45 * sr)
        r = np.exp(-np.pi * bw * widen / sr)
        c = 2.0 * r * np.cos(2.0 * np.pi * f / sr)
        response *= (1.0 - c + r * r) / (1.0 - c * z1 + r * r * z1 * z1)
    return response


def _filter_syllables(excitation: np.ndarray, segments: list[_Segment], sylls: tuple[Syllable, ...],
                      vtl: float, widen: float, sr: int) -> np.ndarray:
    """Filter each syllable with its vowel's formants and overlap-add with short fades."""
    out = np.zeros_like(excitation)
    half = int(0.008 * sr)
    ring = int(0.04 * sr)
    ramp = np.sin(0.5 * np.pi * (np.arange(2 * half) + 0.5) / (2 * half)) ** 2
    for k in range(len(sylls)):
        segs = [s for s in segments if s.syllable == k]
        lo, hi = segs[0].start - half, segs[-1].stop + half
        window = np.ones(hi - lo)
        window[: 2 * half] = ramp  # complementary fades: neighbours sum to one
        window[-2 * half:] = ramp[::-1]
        if lo < 0:
            window, lo = window[-lo:], 0
        if hi > excitation.size:
            window, hi = window[: excitation.size - lo], excitation.size
        f1, f2, f3 = VOWELS[sylls[k].vowel]
        formants = tuple(f * vtl for f in (f1, f2, f3, *UPPER_FORMANTS))
        # zero tail: the resonators ring out (no click) and the FFT's wrap-around is negligible
        size = _fast_len(hi - lo + ring)
        spectrum = np.fft.rfft(excitation[lo:hi] * window, n=size)
        ringing = np.fft.irfft(spectrum * _formant_response(formants, size, sr, widen), n=size)
        stop = min(out.size, lo + size)
        out[lo:stop] += ringing[: stop - lo]
    return out


def _tilt(y: np.ndarray, sr: int, db_per_octave: float) -> np.ndarray:
    """Apply ``db_per_octave`` gain per octave above 500 Hz (flat beyond 8 kHz)."""
    size = _fast_len(y.size + int(0.01 * sr))  # a little zero padding against wrap-around
    spec = np.fft.rfft(y, n=size)
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    octaves = np.log2(np.clip(freqs, 500.0, 8000.0) / 500.0)
    spec *= 10.0 ** (db_per_octave * octaves / 20.0)
    return np.fft.irfft(spec, n=size)[: y.size]


def _band_noise(rng: np.random.Generator, n: int, sr: int, low: float, high: float) -> np.ndarray:
    """Unit-variance noise band-limited to [low, high] Hz with smooth (raised-cosine) skirts."""
    size = _fast_len(n)
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    width = 0.25 * low
    gain = np.clip((freqs - (low - width)) / (2 * width), 0, 1) * np.clip(((high + width) - freqs) / (2 * width), 0, 1)
    gain = np.sin(0.5 * np.pi * gain) ** 2
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(size)) * gain, n=size)[:n]
    return noise / (np.std(noise) or 1.0)


def _consonant_noise(segments: list[_Segment], n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Frication and stop bursts: band-limited noise in consonant segments."""
    hiss = _band_noise(rng, n, sr, 3500.0, 9000.0)
    broad = _band_noise(rng, n, sr, 1200.0, 7000.0)
    env = np.zeros(n)
    source = np.zeros(n)
    for seg in segments:
        if seg.noise <= 0:
            continue
        length = seg.stop - seg.start
        if seg.kind in ("p", "b"):  # closure, then a short burst at release
            burst = min(length, int(0.015 * sr))
            shape = np.zeros(length)
            shape[-burst:] = np.exp(-np.linspace(0.0, 4.0, burst))
            env[seg.start:seg.stop] = seg.noise * shape
            source[seg.start:seg.stop] = broad[seg.start:seg.stop]
        else:
            env[seg.start:seg.stop] = seg.noise * np.sin(np.linspace(0, np.pi, length))
            source[seg.start:seg.stop] = hiss[seg.start:seg.stop]
    return env * source


def synthesize(statement: str, cues: dict[str, float], actor: VoiceActor,
               rng: np.random.Generator, sr: int = SAMPLE_RATE) -> Utterance:
    """Speak a RAVDESS statement ("01" or "02") with emotion ``cues``.

    ``cues`` holds the :class:`~pipeline.core.synth.profiles.VoiceProfile` fields after
    rendering (f0_st, f0_range, rate, loudness_db, tilt_db, jitter, shimmer, breath).
    Returns 48 kHz float32 audio of about 3-4 s: a short silence, the sentence, a tail.
    """
    if statement not in STATEMENTS:
        raise ValueError(f"statement must be one of {sorted(STATEMENTS)}, not {statement!r}")
    sylls = STATEMENTS[statement]
    lead = float(rng.uniform(0.6, 0.95))
    tail = float(rng.uniform(0.5, 0.85))
    segments = _segments(sylls, actor.rate * cues["rate"], int(lead * sr), sr, rng)
    n = segments[-1].stop + int(tail * sr)

    voicing = np.zeros(n)
    for seg in segments:
        level = seg.voice * (0.7 + 0.3 * sylls[seg.syllable].stress) if seg.kind == "V" else seg.voice
        voicing[seg.start:seg.stop] = level
    voicing = _moving_average(_moving_average(voicing, int(0.01 * sr)), int(0.01 * sr))  # ~20 ms ramps

    f0 = _pitch_contour(n, sr, segments, sylls, actor.f0_hz, cues["f0_st"],
                        actor.range_st * cues["f0_range"], rng)
    breath = min(0.4, actor.breath + cues["breath"])
    flow = _glottal_source(f0, voicing, actor.jitter * cues["jitter"],
                           actor.shimmer * cues["shimmer"], sr, rng, open_q=0.55 + breath)
    aspiration = _band_noise(rng, n, sr, 400.0, 5000.0) * voicing * breath * 0.08
    excitation = flow * (1.0 - breath) + aspiration
    widen = 1.0 + 4.0 * breath  # breathy voice: wider (damped) formant bandwidths
    voiced = _filter_syllables(excitation, segments, sylls, actor.vtl, widen, sr)
    voiced = np.diff(voiced, prepend=0.0)  # lip radiation
    speech_span = slice(segments[0].start, segments[-1].stop)
    voiced /= float(np.sqrt(np.mean(voiced[speech_span] ** 2))) or 1.0
    y = voiced + 0.8 * _consonant_noise(segments, n, sr, rng)
    y = _tilt(y, sr, actor.tilt_db + cues["tilt_db"])
    y /= float(np.sqrt(np.mean(y[speech_span] ** 2))) or 1.0

    level_db = REFERENCE_DBFS + actor.gain_db + cues["loudness_db"]
    y *= 10.0 ** (level_db / 20.0)
    floor = _band_noise(rng, n, sr, 60.0, 6000.0)  # room noise, so silence is not digital zero
    y += floor * 10.0 ** (-60.0 / 20.0)
    y = 0.98 * np.tanh(y / 0.98)  # soft limit: the loudest takes never clip
    return Utterance(y.astype(np.float32), sr, segments[0].start / sr, segments[-1].stop / sr)


def envelope(samples: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """Speech envelope per video frame, (n_frames,) float in [0, ~1.5].

    RMS in a window of one frame around each frame time, relative to the neutral
    reference level, so louder speech opens the mouth wider.
    """
    ref = 10.0 ** (REFERENCE_DBFS / 20.0)
    half = int(sr / fps)
    out = np.zeros(n_frames)
    for i in range(n_frames):
        c = int(i / fps * sr)
        chunk = samples[max(0, c - half): c + half]
        if chunk.size:
            out[i] = np.sqrt(np.mean(chunk.astype(np.float64) ** 2)) / ref
    return np.clip(np.sqrt(out), 0.0, 1.5)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float [-1, 1] -> little-endian 16-bit PCM bytes (rounded, clipped)."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2").tobytes()
