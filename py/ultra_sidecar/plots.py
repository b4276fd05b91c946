"""Learning curves for the report (matplotlib, no display)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .protocol import ProtocolError


def _png_path(op: str, path) -> str:
    """Plots go where the caller's run directory says: an absolute .png path in an existing directory, never a
    name relative to wherever the sidecar happens to run."""
    if (
        not isinstance(path, str)
        or not os.path.isabs(path)
        or not path.endswith(".png")
        or not os.path.isdir(os.path.dirname(path))
    ):
        raise ProtocolError("bad_args", f"{op}: path must be an absolute .png path in an existing directory, got {path!r}")
    return path


def plot_curves(curves: dict, path: str, title: str, band_scale: dict | None = None) -> str:
    """curves: {arm: [{"timesteps", "ep_rew_mean"} | per-seed lists thereof]}. Mean over seeds with a band of
    ±std, or of ±band_scale[arm] × sample std when given (t/√n: a 95% confidence interval of the mean)."""
    if not isinstance(curves, dict) or not isinstance(path, str) or not isinstance(title, str):
        raise ProtocolError("bad_args", "plot_curves takes curves (a map of arm to points), path and title (strings)")
    if band_scale is not None and not (
        isinstance(band_scale, dict) and all(isinstance(v, (int, float)) and v >= 0 for v in band_scale.values())
    ):
        raise ProtocolError("bad_args", f"band_scale must map arms to non-negative numbers, got {band_scale!r}")
    _png_path("plot_curves", path)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    try:
        return _draw(fig, ax, curves, path, title, band_scale)
    finally:
        plt.close(fig)  # also when the curves are malformed: an open figure is never freed


def _draw(fig, ax, curves: dict, path: str, title: str, band_scale: dict | None) -> str:
    for arm, runs in curves.items():
        runs = [r for r in (runs if runs and isinstance(runs[0], list) else [runs]) if r]
        if not runs:
            continue
        grid = np.linspace(0, min(r[-1]["timesteps"] for r in runs), 50)
        ys = np.array([np.interp(grid, [p["timesteps"] for p in r], [p["ep_rew_mean"] for p in r]) for r in runs])
        mean = ys.mean(axis=0)
        (line,) = ax.plot(grid, mean, label=arm)
        if len(runs) > 1:
            half = ys.std(axis=0) if band_scale is None else band_scale.get(arm, 0.0) * ys.std(axis=0, ddof=1)
            ax.fill_between(grid, mean - half, mean + half, alpha=0.2, color=line.get_color())
    ax.set_xlabel("refinement timesteps")
    ax.set_ylabel("episode return (training, mean of last 100)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_bars(bars: dict, path: str, title: str, ylabel: str) -> str:
    """Grouped bars with 95% CI whiskers. bars: {group (an x tick): {label (a bar colour): [mean, ci half-width]}};
    a NaN half-width (one sample) draws no whisker."""
    pair = lambda v: (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    )
    if (
        not isinstance(bars, dict)
        or not bars
        or not isinstance(title, str)
        or not isinstance(ylabel, str)
        or not all(isinstance(g, dict) and g and all(pair(v) for v in g.values()) for g in bars.values())
    ):
        raise ProtocolError(
            "bad_args",
            "plot_bars takes bars ({group: {label: [mean, ci half-width]}}, not empty), path, title and ylabel (strings)",
        )
    _png_path("plot_bars", path)
    groups = list(bars)
    labels = list(dict.fromkeys(label for g in bars.values() for label in g))
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    try:
        width = 0.8 / max(len(labels), 1)
        x = np.arange(len(groups))
        for j, label in enumerate(labels):
            vals = [bars[g].get(label, [np.nan, np.nan]) for g in groups]
            means = np.array([float(v[0]) for v in vals])
            errs = np.nan_to_num(np.array([float(v[1]) for v in vals]))
            ax.bar(x + (j - (len(labels) - 1) / 2) * width, means, width, yerr=errs, capsize=3, label=label)
        ax.set_xticks(x, groups)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        return path
    finally:
        plt.close(fig)
