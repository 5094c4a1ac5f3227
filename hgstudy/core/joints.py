"""Joint orders, left/right pairs, skeleton edges and headline metric of the MPII and FLIC joint sets."""

from __future__ import annotations

MPII_JOINTS = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
# Order of the 11 parts in pose-hg-train's FLIC split files (torso = r_shoulder to l_hip).
FLIC_JOINTS = (
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    "l_hip", "r_hip", "l_eye", "r_eye", "nose",
)


def flip_permutation(names: tuple[str, ...]) -> list[int]:
    """Index map that swaps every l_*/r_* joint with its partner (others map to themselves)."""
    index = {name: i for i, name in enumerate(names)}
    swap = {"l_": "r_", "r_": "l_"}
    return [index.get(swap.get(n[:2], n[:2]) + n[2:], i) for i, n in enumerate(names)]


MPII_FLIP = flip_permutation(MPII_JOINTS)

# Bones for drawing skeletons (pairs of joint indices).
MPII_SKELETON = (
    (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
    (10, 11), (11, 12), (12, 7), (7, 13), (13, 14), (14, 15),
)
FLIC_SKELETON = ((0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (0, 6), (3, 7), (6, 7), (8, 10), (9, 10))

# The two joint sets ("layouts") of the study; every dataset's people follow one of them.
JOINT_LAYOUTS = {"mpii": MPII_JOINTS, "flic": FLIC_JOINTS}
SKELETONS = {"mpii": MPII_SKELETON, "flic": FLIC_SKELETON}
# The headline score of each layout: PCKh@0.5 (official MPII protocol) or PCK@0.2 in torso units (FLIC).
METRICS = {"mpii": "pckh", "flic": "pck"}
