"""Audio-visual emotion recognition workbench: the library behind the CLI and dashboard.

Four layers, each a sub-package (import-linter checks them; ``docs/architecture.md``):
``core`` (decoding, features, faces, corpora: both paths use it), ``serve`` (answer a
clip with a bundle), ``research`` (experiments, folds, the results store, export) and
``entry`` (the CLI and the demo). Importing this package is cheap: TensorFlow, librosa
and OpenCV are imported inside the functions that need them.
"""
__version__ = "0.1.0"
