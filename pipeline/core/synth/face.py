"""A drawn face: the video of the synthetic corpus, and its 68 landmarks.

One geometry drives both outputs. :func:`geometry` places every facial feature in a
face-centred frame (x right, y down, unit = half the head width; eyes on y = 0) from
the actor's shape and the expression of the moment; :func:`pose` maps it to pixels
with the head's translation, roll and scale; :func:`draw` paints exactly those
points with OpenCV primitives. So the 68 iBUG/OpenFace points written to the CSV
(jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67) lie on the drawn face
by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (250, 220, 196), (238, 192, 164), (222, 170, 136), (196, 136, 100), (158, 106, 74), (112, 74, 50),
)
HAIR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (28, 24, 22), (58, 40, 28), (98, 68, 44), (196, 164, 108), (146, 144, 140), (118, 56, 34),
)
IRIS_COLOURS: tuple[tuple[int, int, int], ...] = ((84, 56, 38), (60, 100, 140), (80, 110, 70), (40, 30, 25))
#: Expression cues (see profiles.FaceProfile) in the order :func:`geometry` reads them.
CUES: tuple[str, ...] = ("brow_raise", "inner_brow", "brow_lower", "eye_open", "lip_corner",
                         "lip_stretch", "jaw_open", "lip_press", "nose_wrinkle")


@dataclass(frozen=True)
class FaceActor:
    """An actor's face: colours (RGB), hair style (0 short, 1 fringe, 2 long), head
    size ``scale`` (half head width as a fraction of the frame side), head centre
    (fractions of the frame), feature geometry in face units, resting expression."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    background: tuple[int, int, int]
    shirt: tuple[int, int, int]
    hair_style: int
    scale: float
    centre: tuple[float, float]
    jaw_w: float
    jaw_h: float
    jaw_pow: float
    eye_dx: float
    eye_w: float
    eye_h: float
    brow_gap: float
    brow_arch: float
    brow_thick: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_thick: float
    rest: tuple[float, ...]  # resting offset per CUES entry


def _jitter_colour(rng: np.random.Generator, colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in colour)  # type: ignore[return-value]


def random_actor(rng: np.random.Generator, female: bool) -> FaceActor:
    """Draw a face: colours, proportions and a resting expression of its own."""
    rest = rng.normal(0.0, 0.18, size=len(CUES))
    rest[CUES.index("jaw_open")] = abs(rest[CUES.index("jaw_open")]) * 0.3
    grey = rng.uniform(205, 245)
    return FaceActor(
        skin=_jitter_colour(rng, SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], 10),
        hair=_jitter_colour(rng, HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], 8),
        iris=IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        background=_jitter_colour(rng, (int(grey), int(grey), int(grey)), 10),
        shirt=_jitter_colour(rng, (30, 30, 34), 20),
        hair_style=int(rng.integers(3)) if female else int(rng.integers(2)),
        scale=float(rng.uniform(0.21, 0.24) * (0.96 if female else 1.0)),
        centre=(float(rng.uniform(0.47, 0.53)), float(rng.uniform(0.42, 0.47))),
        jaw_w=float(rng.uniform(0.95, 1.03)),
        jaw_h=float(rng.uniform(1.25, 1.42)),
        jaw_pow=float(rng.uniform(0.7, 1.1)),
        eye_dx=float(rng.uniform(0.38, 0.45)),
        eye_w=float(rng.uniform(0.15, 0.19)),
        eye_h=float(rng.uniform(0.065, 0.085) * (1.08 if female else 1.0)),
        brow_gap=float(rng.uniform(0.24, 0.32)),
        brow_arch=float(rng.uniform(0.03, 0.08)),
        brow_thick=float(rng.uniform(0.045, 0.07) * (0.8 if female else 1.0)),
        nose_len=float(rng.uniform(0.9, 1.1)),
        nose_w=float(rng.uniform(0.14, 0.19)),
        mouth_y=float(rng.uniform(0.72, 0.82)),
        mouth_w=float(rng.uniform(0.27, 0.34)),
        lip_thick=float(rng.uniform(0.045, 0.07) * (1.15 if female else 1.0)),
        rest=tuple(float(v) for v in rest),
    )


def _brow(actor: FaceActor, side: int, raise_: float, inner: float, lower: float) -> np.ndarray:
    """Five brow points, outer to inner for side -1 (image left), inner to outer for +1."""
    t = np.linspace(0.0, 1.0, 5)  # 0 = outer end, 1 = inner end
    outer_x = actor.eye_dx + 0.27
    inner_x = max(0.12, actor.eye_dx - 0.22) - 0.05 * max(lower, 0.0)
    x = outer_x + (inner_x - outer_x) * t
    y = -(actor.brow_gap + 0.08) - actor.brow_arch * np.sin(np.pi * (0.2 + 0.7 * t))
    y = y - 0.11 * raise_ - 0.12 * inner * t ** 2 + 0.09 * lower * (0.6 + 0.4 * t)
    pts = np.stack([side * x, y], axis=1)
    return pts if side < 0 else pts[::-1]


def _eye(actor: FaceActor, side: int, openness: float, blink: float) -> np.ndarray:
    """Six eye points in iBUG order (image-left eye: outer corner first)."""
    cx, w = side * actor.eye_dx, actor.eye_w
    up = actor.eye_h * (1.0 + 0.6 * max(openness, 0.0) + 0.45 * min(openness, 0.0))
    low = 0.045 * (1.0 + 0.3 * max(openness, 0.0) + 0.6 * min(openness, 0.0))
    up = (1.0 - blink) * up - blink * 0.7 * low
    # iBUG order for both eyes: left corner, upper lid (2), right corner, lower lid (2)
    xs = np.array([-w, -w / 3, w / 3, w, w / 3, -w / 3])
    outer_drop = 0.01  # the outer corner sits a little lower
    ys = np.array([outer_drop if side < 0 else 0.0, -up, -up, 0.0 if side < 0 else outer_drop, low, low])
    return np.stack([cx + xs, ys], axis=1)


def _mouth(actor: FaceActor, corner: float, stretch: float, gap: float, press: float,
           wrinkle: float) -> np.ndarray:
    """Twenty mouth points: outer lips 48-59 then inner lips 60-67."""
    mw = actor.mouth_w * (1.0 + 0.15 * stretch + 0.06 * max(corner, 0.0))
    my = actor.mouth_y
    up_t = actor.lip_thick * (1.0 - 0.5 * max(press, 0.0))
    low_t = 1.25 * actor.lip_thick * (1.0 - 0.5 * max(press, 0.0))
    lift = -0.08 * corner + 0.025 * stretch  # corners up (smile) or down (frown)
    top = my - 0.005 - 0.03 * wrinkle

    def bend(x: np.ndarray) -> np.ndarray:
        return lift * (np.abs(x) / mw) ** 2

    ox = np.array([-1.0, -0.6, -0.22, 0.0, 0.22, 0.6, 1.0, 0.6, 0.22, 0.0, -0.22, -0.6]) * mw
    oy = np.empty(12)
    oy[0], oy[6] = my + lift, my + lift
    oy[1:6] = top - up_t * np.array([0.75, 1.0, 0.85, 1.0, 0.75])
    oy[7:12] = my + gap + low_t * np.array([0.75, 1.0, 1.05, 1.0, 0.75])
    oy[1:6] += bend(ox[1:6])
    oy[7:12] += bend(ox[7:12])
    ix = np.array([-0.9, -0.4, 0.0, 0.4, 0.9, 0.4, 0.0, -0.4]) * mw
    iy = np.empty(8)
    iy[0], iy[4] = my + lift * 0.8, my + lift * 0.8
    iy[1:4] = top + bend(ix[1:4])
    iy[5:8] = my + gap + bend(ix[5:8])
    return np.concatenate([np.stack([ox, oy], 1), np.stack([ix, iy], 1)])


def geometry(actor: FaceActor, expr: dict[str, float], gap: float, blink: float = 0.0) -> dict[str, np.ndarray]:
    """All face parts in face units for one moment.

    ``expr``: cue values (CUES) including the actor's rest; ``gap``: lip opening in
    face units (speech + jaw drop); ``blink`` 0 (open) .. 1 (closed). Returns
    ``landmarks`` (68, 2) plus the outlines :func:`draw` needs (head, hair, ears...).
    """
    e = {c: float(expr.get(c, 0.0)) for c in CUES}
    a = np.pi * np.arange(17) / 16.0
    jaw_drop = 0.55 * gap
    jaw = np.stack([-actor.jaw_w * np.cos(a),
                    -0.12 + actor.jaw_h * np.sin(a) ** actor.jaw_pow + jaw_drop * np.sin(a) ** 2], 1)
    brows = np.concatenate([
        _brow(actor, -1, e["brow_raise"], e["inner_brow"], e["brow_lower"]),
        _brow(actor, +1, e["brow_raise"], e["inner_brow"], e["brow_lower"])])
    nl = actor.nose_len
    bridge = np.array([[0.0, -0.08], [0.0, 0.07 * nl], [0.0, 0.22 * nl], [0.0, 0.37 * nl - 0.03 * e["nose_wrinkle"]]])
    base_y = 0.45 * nl - 0.04 * e["nose_wrinkle"]
    nw = actor.nose_w * (1.0 + 0.1 * e["nose_wrinkle"])
    base = np.array([[-nw, base_y - 0.02], [-nw / 2, base_y + 0.015], [0.0, base_y + 0.03],
                     [nw / 2, base_y + 0.015], [nw, base_y - 0.02]])
    eyes = np.concatenate([_eye(actor, -1, e["eye_open"], blink), _eye(actor, +1, e["eye_open"], blink)])
    mouth = _mouth(actor, e["lip_corner"], e["lip_stretch"], gap, e["lip_press"], e["nose_wrinkle"])
    landmarks = np.concatenate([jaw, brows, bridge, base, eyes, mouth])

    b = np.linspace(0.0, np.pi, 21)
    top = 1.38
    crown = np.stack([actor.jaw_w * 1.02 * np.cos(b), -0.12 - top * np.sin(b)], 1)  # from point 16 over to 0
    head = np.concatenate([jaw, crown[1:-1]])
    hairline_y = {0: -0.86, 1: -0.7, 2: -0.86}[actor.hair_style]
    hb = np.linspace(np.pi, 0.0, 21)
    ob = np.linspace(0.3, np.pi - 0.3, 21)  # stops above the ears: short sideburns
    outer = np.stack([actor.jaw_w * 1.07 * np.cos(ob), -0.1 - (top + 0.1) * np.sin(ob)], 1)
    # hairline across the forehead, curving down to the temples to meet the sideburns
    line = np.stack([actor.jaw_w * np.cos(hb), hairline_y + 0.08 * np.sin(hb) + 0.3 * (1 - np.sin(hb)) ** 2], 1)
    hair = np.concatenate([outer, line])
    long_hair = np.array([[-1.2, -0.4], [-1.25, 1.2], [-0.7, 1.25], [0.7, 1.25], [1.25, 1.2], [1.2, -0.4]])
    neck = np.array([[-0.5, 0.6], [0.5, 0.6], [0.55, 2.4], [-0.55, 2.4]])
    shoulders = np.array([[-0.55, 1.45], [0.55, 1.45], [2.6, 1.95], [3.0, 4.0], [-3.0, 4.0], [-2.6, 1.95]])
    ears = np.array([[-actor.jaw_w, 0.08], [actor.jaw_w, 0.08]])
    irises = np.stack([landmarks[36:42].mean(0), landmarks[42:48].mean(0)])
    return {"landmarks": landmarks, "head": head, "hair": hair, "long_hair": long_hair,
            "neck": neck, "shoulders": shoulders, "ears": ears, "irises": irises}


def pose(parts: dict[str, np.ndarray], actor: FaceActor, size: int, dx: float = 0.0, dy: float = 0.0,
         roll_deg: float = 0.0, zoom: float = 1.0) -> dict[str, np.ndarray]:
    """Map face units to pixels of a ``size`` x ``size`` frame (same transform for all parts)."""
    unit = actor.scale * size * zoom
    c, s = np.cos(np.radians(roll_deg)), np.sin(np.radians(roll_deg))
    rot = np.array([[c, -s], [s, c]]) * unit
    origin = np.array([actor.centre[0] * size + dx, actor.centre[1] * size + dy])
    out = {k: v @ rot.T + origin for k, v in parts.items()}
    out["unit"] = np.array([unit])
    return out


_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel drawing keeps motion smooth


def _fix(points: np.ndarray) -> np.ndarray:
    return np.round(points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(min(255, max(0, int(c * factor))) for c in colour)  # type: ignore[return-value]


def _draw_eye(img: np.ndarray, eye: np.ndarray, iris_at: tuple[float, float], unit: float,
              iris: tuple[int, int, int]) -> None:
    """Eye white and iris, the iris clipped to the lid opening (blended in a small box only)."""
    import cv2

    h, w = img.shape[:2]
    x0, y0 = np.floor(eye.min(0)).astype(int) - 1
    x1, y1 = np.ceil(eye.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return
    offset = np.array([x0, y0], float)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fix(eye - offset)], 255, cv2.LINE_AA, _SHIFT)
    layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
    layer[:] = (238, 236, 230)
    cx, cy = int((iris_at[0] - x0) * 16), int((iris_at[1] - y0) * 16)
    cv2.circle(layer, (cx, cy), int(0.07 * unit * 16), iris, -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(layer, (cx, cy), int(0.03 * unit * 16), (15, 12, 12), -1, cv2.LINE_AA, _SHIFT)
    alpha = mask[..., None].astype(np.float32) / 255.0
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi * (1.0 - alpha) + layer * alpha).astype(np.uint8)


def draw(actor: FaceActor, px: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Paint the posed face (output of :func:`pose`) into a (size, size, 3) RGB uint8 frame."""
    import cv2

    aa = cv2.LINE_AA
    img = np.empty((size, size, 3), np.uint8)
    img[:] = actor.background
    unit = float(px["unit"][0])
    lm = px["landmarks"]
    skin = actor.skin
    if actor.hair_style == 2:
        cv2.fillPoly(img, [_fix(px["long_hair"])], actor.hair, aa, _SHIFT)
    cv2.fillPoly(img, [_fix(px["neck"])], _shade(skin, 0.72), aa, _SHIFT)
    cv2.fillPoly(img, [_fix(px["shoulders"])], actor.shirt, aa, _SHIFT)
    axes = (int(0.13 * unit * 16), int(0.26 * unit * 16))
    for ex, ey in px["ears"]:
        cv2.ellipse(img, (int(ex * 16), int(ey * 16)), axes, 0, 0, 360, _shade(skin, 0.92), -1, aa, _SHIFT)
    cv2.fillPoly(img, [_fix(px["head"])], skin, aa, _SHIFT)
    cv2.fillPoly(img, [_fix(px["hair"])], actor.hair, aa, _SHIFT)
    # brows: a band below the landmark line, thinner at the outer end
    thick = actor.brow_thick * unit
    for part in (lm[17:22], lm[22:27]):
        lower = part + np.array([0.0, thick])
        cv2.fillPoly(img, [_fix(np.concatenate([part, lower[::-1]]))], _shade(actor.hair, 0.8), aa, _SHIFT)
    # eyes: white, iris clipped to the eye opening, lid lines
    for eye, (ix, iy) in zip((lm[36:42], lm[42:48]), px["irises"]):
        _draw_eye(img, eye, (ix, iy), unit, actor.iris)
    lid = max(1, int(round(0.02 * unit)))
    for eye in (lm[36:42], lm[42:48]):
        cv2.polylines(img, [_fix(eye[:4])], False, (35, 28, 26), lid, aa, _SHIFT)
        cv2.polylines(img, [_fix(eye[[3, 4, 5, 0]])], False, _shade(skin, 0.6), 1, aa, _SHIFT)
    # nose: a shaded bridge, the base line and nostrils
    cv2.polylines(img, [_fix(lm[27:31] + np.array([0.04 * unit, 0.0]))], False, _shade(skin, 0.86),
                  max(1, int(0.03 * unit)), aa, _SHIFT)
    cv2.polylines(img, [_fix(lm[31:36])], False, _shade(skin, 0.62), 1, aa, _SHIFT)
    for k in (32, 34):
        cv2.ellipse(img, (int(lm[k, 0] * 16), int((lm[k, 1] - 0.01 * unit) * 16)),
                    (int(0.035 * unit * 16), int(0.02 * unit * 16)), 0, 0, 360, _shade(skin, 0.45), -1, aa, _SHIFT)
    # mouth: lips, the opening (dark, upper teeth) and the lip line
    lips = (int(min(255, skin[0] * 0.92 + 20)), int(skin[1] * 0.62), int(skin[2] * 0.62))
    cv2.fillPoly(img, [_fix(lm[48:60])], lips, aa, _SHIFT)
    inner = lm[60:68]
    if inner[5:8, 1].mean() - inner[1:4, 1].mean() > 0.015 * unit:
        cv2.fillPoly(img, [_fix(inner)], (52, 22, 28), aa, _SHIFT)
        teeth = inner[[0, 1, 2, 3, 4]].copy()
        teeth_low = teeth + np.array([0.0, 0.04 * unit])
        cv2.fillPoly(img, [_fix(np.concatenate([teeth[1:4], teeth_low[1:4][::-1]]))], (232, 228, 218), aa, _SHIFT)
    cv2.polylines(img, [_fix(inner[[0, 1, 2, 3, 4]])], False, _shade(lips, 0.55), 1, aa, _SHIFT)
    return img


def onset_apex_offset(t: np.ndarray, onset: float, rise: float, offset: float, fall: float,
                      residual: float) -> np.ndarray:
    """Expression strength over time in [0, 1]: 0 before ``onset`` (s), smooth rise over
    ``rise`` s to the apex, held until ``offset``, then decay over ``fall`` s to ``residual``."""
    up = _smoothstep(np.clip((t - onset) / rise, 0.0, 1.0))
    down = _smoothstep(np.clip((t - offset) / fall, 0.0, 1.0))
    return up * (1.0 - (1.0 - residual) * down)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero slope at both ends (x in [0, 1])."""
    return x * x * (3.0 - 2.0 * x)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    """A slow random wobble: three sinusoids of random frequency (0.2-1.5 Hz) and phase."""
    out = np.zeros_like(t)
    for _ in range(3):
        out += np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * t + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 3.0


def _blinks(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Lid closure per frame in [0, 1]: one blink plus ~one per 3 s, each ~0.2 s long."""
    duration = float(t[-1]) if t.size else 0.0
    starts = rng.uniform(0.0, duration + 0.1, size=1 + int(rng.poisson(duration / 3.0)))
    out = np.zeros_like(t)
    for start in starts:
        out = np.maximum(out, np.clip(1.0 - np.abs(t - start) / 0.1, 0.0, 1.0))
    return out


@dataclass(frozen=True)
class Take:
    """A rendered take: ``frames`` (n, size, size, 3) RGB uint8; ``landmarks``
    (n, 68, 2) float pixel coordinates; ``times`` (n,) seconds."""

    frames: np.ndarray
    landmarks: np.ndarray
    times: np.ndarray


def render_take(actor: FaceActor, cues: dict[str, float], env: np.ndarray, fps: float,
                speech: tuple[float, float], rng: np.random.Generator, size: int = 160) -> Take:
    """Animate a take: the expression ``cues`` (apex values) over an onset-apex-offset
    curve around the ``speech`` span (s), the mouth opening driven by the audio
    envelope ``env`` (one value per frame), plus head motion, blinks and lighting noise."""
    n = env.size
    t = np.arange(n) / fps
    curve = onset_apex_offset(t, speech[0] - rng.uniform(0.2, 0.5), rng.uniform(0.3, 0.6),
                              speech[1] + rng.uniform(0.0, 0.3), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.5))
    curve = np.maximum(curve, rng.uniform(0.0, 0.15))
    blink = _blinks(rng, t)
    dx, dy = _smooth_noise(rng, t, 0.02 * size), _smooth_noise(rng, t, 0.015 * size)
    roll, zoom = _smooth_noise(rng, t, 3.0), 1.0 + _smooth_noise(rng, t, 0.02)
    gain = rng.uniform(0.88, 1.08) * (1.0 + _smooth_noise(rng, t, 0.02))
    ramp = np.linspace(-1.0, 1.0, size)[None, :, None] * rng.uniform(-0.12, 0.12)
    tint = rng.uniform(0.95, 1.05, size=3)[None, None, :]
    light = (1.0 + ramp) * tint
    noise_bank = rng.normal(0.0, 2.5, size=(4, size, size, 3)).astype(np.float32)
    frames = np.empty((n, size, size, 3), np.uint8)
    marks = np.empty((n, 68, 2))
    rest = dict(zip(CUES, actor.rest))
    for i in range(n):
        expr = {c: rest[c] + curve[i] * cues.get(c, 0.0) for c in CUES}
        gap = 0.13 * env[i] + 0.12 * max(0.0, expr["jaw_open"]) * curve[i]
        parts = geometry(actor, expr, gap, blink[i])
        px = pose(parts, actor, size, dx[i], dy[i], roll[i], zoom[i])
        img = draw(actor, px, size).astype(np.float32)
        img = img * (light * gain[i]) + noise_bank[i % 4]
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
        marks[i] = px["landmarks"]
    return Take(frames, marks, t)
