"""MPII Mannequins: the real MPII poses rendered as occluding mannequins in cluttered scenes (no download)."""
