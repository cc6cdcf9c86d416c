"""Native-library order: openSMILE and pylibsrtp must load before TensorFlow, or the
process dies (heap corruption / segfault). Checked in a fresh interpreter, where the
pipeline's own entry points decide the order."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def test_opensmile_and_webrtc_survive_after_a_keras_model_is_built():
    script = textwrap.dedent("""
        import numpy as np
        import models
        from pipeline.core import audio
        from pipeline.core.preprocessing import Preprocessing

        models.build("lrcn_ref", (4, 64, 64, 3), 6)          # imports TensorFlow
        import pylibsrtp                                     # streamlit-webrtc's native part
        y = (0.1 * np.sin(np.arange(3 * 22050) / 22050 * 2 * np.pi * 220)).astype("float32")
        print(audio.featurize(y, Preprocessing(), "compare").shape)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(6373,)" in done.stdout
