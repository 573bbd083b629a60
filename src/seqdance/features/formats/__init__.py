"""Readers by file format: one module per format (topology and frames), one registry.

:mod:`~seqdance.features.formats.registry` picks the reader of a file by its suffix;
:mod:`~seqdance.features.formats.common` holds what the readers share (the atom table, the
block of frames, the text opener, the CRYST1 box).
"""
