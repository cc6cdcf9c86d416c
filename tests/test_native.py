"""Native-library order: openSMILE and pylibsrtp must load before TensorFlow, or the
process dies (heap corruption / segfault). Checked in a fresh interpreter, where the
pipeline's own entry points decide the order. And TensorFlow's start-up notices stay off
stderr while everything else written there is kept."""
from __future__ import annotations

import os
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


def test_tensorflow_start_up_notices_are_held_back_and_other_lines_kept(capfd) -> None:
    """Native code writes to fd 2 past sys.stderr: while TensorFlow is imported, its
    start-up notices are dropped and anything else written there comes back, in order."""
    from pipeline.core.native import notices_off_stderr

    with notices_off_stderr():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see...\n")
        os.write(2, b"a real warning from another thread\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"error: the last line\n")
    err = capfd.readouterr().err
    assert err == "a real warning from another thread\nerror: the last line\n"
