"""What this protocol leaves to the methods that find the bias themselves (LfF, ReBias).

LfF (Nam et al., NeurIPS 2020) up-weights the training images its biased network gets wrong; ReBias (Bahng
et al., ICML 2020) makes the main network's features independent of a network that can see colour only. Both
were shown on Colored MNIST variants that keep a share of bias-conflicting images (a digit in another digit's
colour). The authors' protocol keeps none: every training digit is drawn around its own class's mean colour.
What remains is the jitter: it puts some images' colour nearer another digit's mean than their own, so a
classifier that reads colour alone gets them wrong. :func:`conflicting_share` measures that share, the
error of the nearest-mean colour classifier on the training colours (the best colour-only rule for equal,
isotropic jitter before clipping), on colours drawn exactly as the training set draws them.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from lnl.analysis import headline
from lnl.analysis.paper import LEVELS

# the methods that find the bias without bias labels (registry key -> what the jitter leaves it); the page
# adds the note when the sweep runs one of them
LABEL_FREE_DEBIASING = {"lff": "what LfF can up-weight",
                        "rebias": "what keeps ReBias's colour-only network from a perfect score"}


def conflicting_share(color_var: float, palette: str = "default", noise: str = "per_channel_var",
                      bounds: str = "clip", n: int = 100_000, seed: int = 0) -> float:
    """The share of training colours nearer another digit's palette mean than their own (digits drawn
    uniformly; ``n`` draws, deterministic in ``seed``)."""
    from lnl.data.colored import draw_colors, load_palette

    means = load_palette(palette)
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, len(means), n)
    colors = draw_colors(digits, means, color_var, rng, noise, bounds)
    nearest = ((colors[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    return float((nearest != digits).mean())


def note(systems: Iterable[tuple[str, str]], levels: Iterable[float] = LEVELS) -> str:
    """A paragraph for the page under the headline table when a label-free debiasing method is one of the
    ``systems`` ((display name, method) pairs); "" otherwise."""
    present = [(name, method) for name, method in systems if method in LABEL_FREE_DEBIASING]
    if not present:
        return ""
    levels = sorted(levels)
    low, high = conflicting_share(levels[0]), conflicting_share(levels[-1])
    names = [name for name, _ in present]
    who = headline.and_list(names)
    return (f"{who} {'finds' if len(names) == 1 else 'find'} the bias without its labels, and "
            f"{'was' if len(names) == 1 else 'were'} shown on Colored MNIST variants that keep bias-conflicting "
            "digits (a digit in another digit's colour). This training set has none: only the colour jitter puts "
            f"{low:.0%} (σ² {levels[0]:.3f}) to {high:.0%} (σ² {levels[-1]:.3f}) of the training images nearer "
            "another digit's mean colour than their own, the images a colour-only classifier gets wrong: "
            + ", and ".join(LABEL_FREE_DEBIASING[method] for _, method in present) + ".")
