"""Minimal stand-ins for the two published PyTorch hourglass implementations, written for the tests.

They reproduce the *module layout* (so state-dict key names and shapes) and the order of operations
of princeton-vl/pytorch_stacked_hourglass (PoseNet) and bearpaw/pytorch-pose (HourglassNet), as
documented in their repositories, so conversion can be checked end to end without their weights.
"""

import torch
import torch.nn.functional as nnf
from torch import nn


# --- princeton-vl/pytorch_stacked_hourglass layout ------------------------------------------------
class PshConv(nn.Module):
    def __init__(self, c_in, c_out, k=3, stride=1, bn=False, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, padding=(k - 1) // 2)
        self.bn = nn.BatchNorm2d(c_out) if bn else None
        self.relu = relu

    def forward(self, x):
        x = self.conv(x)
        x = self.bn(x) if self.bn is not None else x
        return nnf.relu(x) if self.relu else x


class PshResidual(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), PshConv(c_in, c_out // 2, 1, relu=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out // 2), PshConv(c_out // 2, c_out // 2, 3, relu=False)
        self.bn3, self.conv3 = nn.BatchNorm2d(c_out // 2), PshConv(c_out // 2, c_out, 1, relu=False)
        self.skip_layer = PshConv(c_in, c_out, 1, relu=False)  # registered even when unused
        self.need_skip = c_in != c_out

    def forward(self, x):
        res = self.skip_layer(x) if self.need_skip else x
        out = self.conv1(nnf.relu(self.bn1(x)))
        out = self.conv2(nnf.relu(self.bn2(out)))
        return self.conv3(nnf.relu(self.bn3(out))) + res


class PshHourglass(nn.Module):
    def __init__(self, n, f):
        super().__init__()
        self.n = n
        self.up1, self.low1 = PshResidual(f, f), PshResidual(f, f)
        self.low2 = PshHourglass(n - 1, f) if n > 1 else PshResidual(f, f)
        self.low3 = PshResidual(f, f)

    def forward(self, x):
        low = self.low3(self.low2(self.low1(nnf.max_pool2d(x, 2, 2))))
        return self.up1(x) + nnf.interpolate(low, scale_factor=2, mode="nearest")


class PshPoseNet(nn.Module):
    def __init__(self, nstack, inp_dim, oup_dim, depth=4):
        super().__init__()
        self.nstack = nstack
        self.pre = nn.Sequential(PshConv(3, 64, 7, 2, bn=True), PshResidual(64, 128), nn.MaxPool2d(2, 2),
                                 PshResidual(128, 128), PshResidual(128, inp_dim))
        self.hgs = nn.ModuleList(nn.Sequential(PshHourglass(depth, inp_dim)) for _ in range(nstack))
        self.features = nn.ModuleList(
            nn.Sequential(PshResidual(inp_dim, inp_dim), PshConv(inp_dim, inp_dim, 1, bn=True)) for _ in range(nstack))
        self.outs = nn.ModuleList(PshConv(inp_dim, oup_dim, 1, relu=False) for _ in range(nstack))
        self.merge_features = nn.ModuleList(PshConv(inp_dim, inp_dim, 1, relu=False) for _ in range(nstack - 1))
        self.merge_preds = nn.ModuleList(PshConv(oup_dim, inp_dim, 1, relu=False) for _ in range(nstack - 1))

    def forward(self, imgs):  # NHWC, as the reference takes it
        x = self.pre(imgs.permute(0, 3, 1, 2))
        preds = []
        for i in range(self.nstack):
            feature = self.features[i](self.hgs[i](x))
            preds.append(self.outs[i](feature))
            if i < self.nstack - 1:
                x = x + self.merge_preds[i](preds[-1]) + self.merge_features[i](feature)
        return torch.stack(preds, 1)


# --- bearpaw/pytorch-pose layout --------------------------------------------------------------------
class BpBottleneck(nn.Module):
    def __init__(self, inplanes, planes, downsample=None):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(inplanes), nn.Conv2d(inplanes, planes, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes, 3, padding=1)
        self.bn3, self.conv3 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes * 2, 1)
        self.downsample = downsample

    def forward(self, x):
        out = self.conv1(nnf.relu(self.bn1(x)))
        out = self.conv2(nnf.relu(self.bn2(out)))
        out = self.conv3(nnf.relu(self.bn3(out)))
        return out + (self.downsample(x) if self.downsample is not None else x)


class BpHourglass(nn.Module):
    def __init__(self, num_blocks, planes, depth):
        super().__init__()
        self.depth = depth

        def blocks():
            return nn.Sequential(*(BpBottleneck(planes * 2, planes) for _ in range(num_blocks)))

        self.hg = nn.ModuleList(
            nn.ModuleList([blocks() for _ in range(4 if level == 0 else 3)]) for level in range(depth))

    def _forward(self, n, x):
        up1 = self.hg[n - 1][0](x)
        low1 = self.hg[n - 1][1](nnf.max_pool2d(x, 2, stride=2))
        low2 = self._forward(n - 1, low1) if n > 1 else self.hg[n - 1][3](low1)
        return up1 + nnf.interpolate(self.hg[n - 1][2](low2), scale_factor=2)

    def forward(self, x):
        return self._forward(self.depth, x)


class BpHourglassNet(nn.Module):
    def __init__(self, num_stacks=2, num_blocks=1, num_classes=16, depth=4):
        super().__init__()
        self.inplanes, self.num_feats, self.num_stacks = 64, 128, num_stacks
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, stride=2, padding=3), nn.BatchNorm2d(64)
        self.layer1 = self._make_residual(64, 1)
        self.layer2 = self._make_residual(64, 1)
        self.layer3 = self._make_residual(self.num_feats, 1)
        ch = self.num_feats * 2
        self.hg = nn.ModuleList(BpHourglass(num_blocks, self.num_feats, depth) for _ in range(num_stacks))
        self.res = nn.ModuleList(self._make_residual(self.num_feats, num_blocks) for _ in range(num_stacks))
        self.fc = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch, ch, 1), nn.BatchNorm2d(ch), nn.ReLU()) for _ in range(num_stacks))
        self.score = nn.ModuleList(nn.Conv2d(ch, num_classes, 1) for _ in range(num_stacks))
        self.fc_ = nn.ModuleList(nn.Conv2d(ch, ch, 1) for _ in range(num_stacks - 1))
        self.score_ = nn.ModuleList(nn.Conv2d(num_classes, ch, 1) for _ in range(num_stacks - 1))

    def _make_residual(self, planes, blocks):
        downsample = None
        if self.inplanes != planes * 2:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 2, 1))
        layers = [BpBottleneck(self.inplanes, planes, downsample)]
        self.inplanes = planes * 2
        layers += [BpBottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = nnf.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(nnf.max_pool2d(self.layer1(x), 2, 2)))
        out = []
        for i in range(self.num_stacks):
            y = self.fc[i](self.res[i](self.hg[i](x)))
            out.append(self.score[i](y))
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](out[-1])
        return out


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights *and* BatchNorm statistics, so a wrong mapping cannot hide behind defaults."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    return model.eval()
