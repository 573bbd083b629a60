"""seqdance: SeqDance/ESMDance protein dynamics from sequence.

Pipeline: structures/trajectories -> ``features`` -> ``data`` (dataset) -> ``model``
-> ``train`` -> ``inference`` (predict, embed, score).
"""

__version__ = "0.1.0"
