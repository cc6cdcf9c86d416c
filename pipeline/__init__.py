"""Audio-visual emotion recognition workbench: the library behind the CLI and dashboard.

Importing this package is cheap: TensorFlow, librosa and OpenCV are imported inside
the functions that need them.
"""
__version__ = "0.1.0"
