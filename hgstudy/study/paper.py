"""The paper's numbers that the study compares with (Newell, Yang and Deng, ECCV 2016), in one place.

Validation accuracy of the ablations is PCKh@0.5 over wrists, elbows, knees and ankles on MPII (section 5.2,
Fig. 9 and its text); FLIC is test PCK@0.2 of the 8-stack network (observer-centric labels).
"""

PAPER_FLIC = {"elbow": 99.0, "wrist": 97.0}
PAPER_ACCURACY = {"hg_stacked_int": 87.4, "s4x2": 87.8, "s8x1": 88.1}
PAPER_MIDDLE_STACK = {"hg_stacked_int": 84.6, "s4x2": 86.5, "s8x1": 87.1}
