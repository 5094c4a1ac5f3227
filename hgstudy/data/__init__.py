"""Data: the real datasets (MPII, FLIC), their downloads and crop store, and the sample code every dataset shares
(augmentation, targets, the seeded Dataset base; the mannequins build on it in `hgstudy.mannequin`).

Every dataset's `__getitem__` returns the same sample, so training, evaluation and metrics never
know which dataset they run on. Values are numpy arrays or Python numbers; torch's default collate
turns them into batched tensors. R = input resolution, r = R // 4 = heatmap resolution, J = joints.

    image          float32 (3, R, R)  RGB in [0, 1]
    target         float32 (J, r, r)  Gaussian heatmaps (all zero where target_weight is 0)
    target_weight  float32 (J,)       1 = supervise this joint; 0 = not annotated or outside the crop
    joints         float32 (J, 2)     ground truth in original image pixels (0, 0 where not annotated)
    joints_hm      float32 (J, 2)     the joints in heatmap pixels, after augmentation (after a flip,
                                      target, target_weight and joints_hm are left/right swapped)
    annotated      bool    (J,)
    visible        float32 (J,)       the annotation's visibility flag
    matrix         float64 (2, 3)     affine map original image -> heatmap pixels used for this sample
                                      (matrix_input: the same to input-crop pixels);
                                      `hgstudy.core.geometry.invert_affine` maps predictions back
    center         float32 (2,), scale float: the crop's centre and scale after dataset adjustments
    norm           float: PCKh head size (MPII) or torso size (FLIC), in original pixels
    index          int: position of the person in the split
"""
