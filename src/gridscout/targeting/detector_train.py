"""Training of the hole detector network. torch is imported lazily: inference runs on ONNX Runtime.

The network is a three-level U-Net (12-24-32 channels, about 40 k weights) that maps a
`normalised_view` to per-pixel hole logits; its receptive field spans about three
lattice pitches, enough to tell a hole from film, bar or vacuum by its surroundings.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ..model.errors import GridScoutError


def _torch():  # noqa: ANN202
    try:
        import torch
    except ImportError:
        raise GridScoutError("training the hole detector needs torch: pip install 'gridscout[train]'") from None
    return torch


def build_unet(torch):  # noqa: ANN001, ANN201
    """The detector's architecture, as a torch module."""
    nn = torch.nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc1, self.enc2, self.mid = block(1, 12), block(12, 24), block(24, 32)
            self.dec2, self.dec1 = block(32 + 24, 24), block(24 + 12, 12)
            self.pool = nn.MaxPool2d(2)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.head = nn.Conv2d(12, 1, 1)

        def forward(self, x):  # noqa: ANN001, ANN202
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            m = self.mid(self.pool(e2))
            d2 = self.dec2(torch.cat([self.up(m), e2], dim=1))
            d1 = self.dec1(torch.cat([self.up(d2), e1], dim=1))
            return self.head(d1)

    return UNet()


def fit_detector(views: npt.NDArray[np.float32], masks: npt.NDArray[np.float32], *, steps: int,
                 batch: int = 16, seed: int = 0, say: Callable[[str], None] = print) -> bytes:
    """Train the U-Net on (view, mask) pairs and return it as ONNX bytes.

    Parameters
    ----------
    views : (N, S, S) ndarray
        Normalised views (`gridscout.targeting.detector.normalised_view`), S a multiple of 4.
    masks : (N, S, S) ndarray
        1 inside holes that show, 0 elsewhere.
    steps : int
        Optimiser steps (Adam, learning rate 3e-3 falling to 3e-4), random flips and
        quarter turns as augmentation.
    """
    torch = _torch()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_unet(torch)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps, eta_min=3e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    net.train()
    for step in range(steps):
        pick = rng.integers(len(views), size=batch)
        x, y = _augmented(views[pick], masks[pick], rng)
        loss = loss_fn(net(torch.from_numpy(x)[:, None]), torch.from_numpy(y)[:, None])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            say(f"  step {step + 1}/{steps}: loss {loss.item():.4f}")
    return _to_onnx(torch, net.eval(), views.shape[-1])


def _augmented(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32], rng: np.random.Generator):  # noqa: ANN202
    turns = int(rng.integers(4))
    x, y = np.rot90(x, turns, axes=(1, 2)), np.rot90(y, turns, axes=(1, 2))
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, :, ::-1]
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)


def _to_onnx(torch, net, side: int) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    example = torch.zeros(1, 1, side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (example,), buffer, dynamo=False, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {2: "rows", 3: "cols"}, "logits": {2: "rows", 3: "cols"}},
                          opset_version=17)
    return buffer.getvalue()
