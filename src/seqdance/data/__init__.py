"""Training data: build ``features.h5`` + ``index.csv``, check, split, weight and load it.

Stages: :mod:`manifest` (what to build) -> :mod:`build` (extract in parallel, stage, merge)
-> :mod:`store` (the HDF5 layout) -> :mod:`check`, :mod:`split`, :mod:`loss_weights`
-> :mod:`dataset` (torch ``Dataset``, cropping, collate, per-group loaders).
"""
