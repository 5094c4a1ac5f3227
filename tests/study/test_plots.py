import matplotlib.pyplot as plt
import numpy as np

from hgstudy.core.joints import FLIC_SKELETON, MPII_SKELETON
from hgstudy.study import plots


def test_skeletons_follow_the_joint_set():
    # The paper profile's data stage draws FLIC samples (11 parts) with the same function as MPII's (16 joints).
    for joints, bones in ((16, MPII_SKELETON), (11, FLIC_SKELETON)):
        fig, ax = plt.subplots()
        plots.draw_pose(ax, np.random.default_rng(0).uniform(0, 64, (joints, 2)))
        assert len(ax.lines) == len(bones)
        colours = {line.get_color() for line in ax.lines}
        assert {"tab:red", "tab:blue"} <= colours
        plt.close(fig)
