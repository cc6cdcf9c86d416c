"""The research path: experiment specs, folds, training, metrics, the results store
(``store`` is its read-only API), fusion runs, export to a bundle, ``evaluate``, the feature
cache and the Ray executor. Imports ``core``, ``models`` and ``serve`` (to write and score bundles).
"""
