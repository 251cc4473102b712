"""Adam's hyperparameters: their defaults, stated once, and their validation.

Both execution paths (:class:`adamlib.Adam` in NumPy and :class:`adamlib.torch.Adam`)
check their arguments here, so a bad value gets the same message whichever path a
reader uses.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Callable

LR: float = 1e-3
BETAS: tuple[float, float] = (0.9, 0.999)
EPS: float = 1e-8
WEIGHT_DECAY: float = 0.0
#: Adam-atan2's constants :math:`a, b` in :math:`a \operatorname{atan2}(\hat m, b\sqrt{\hat v})`
#: (Everett et al., 2024), as in the public PyTorch version ``lucidrains/adam-atan2-pytorch``.
ATAN2_A: float = 1.27
ATAN2_B: float = 1.0


def check_real(name: str, value: object, valid: str, ok: Callable[[float], bool]) -> float:
    """Return ``value`` as a float if it is a finite real number for which ``ok`` holds.

    Raises ``TypeError`` for a non-number (``bool`` included) and ``ValueError`` for NaN,
    an infinity or a value ``ok`` refuses; both messages name ``name`` and say ``valid``.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number ({valid}), got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not ok(value):
        raise ValueError(f"{name} must be {valid}, got {value!r}")
    return value


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int if it is an integer ``>= minimum`` (``bool`` is refused).

    Raises ``TypeError`` for a non-integer and ``ValueError`` below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_lr(lr: object) -> float:
    """Return ``lr`` as a float; raise ``ValueError`` unless ``0 <= lr < inf``."""
    return check_real("lr", lr, "a finite number >= 0", lambda x: 0.0 <= x < math.inf)


def check_beta(name: str, beta: object) -> float:
    """Return ``beta`` as a float; raise ``ValueError`` unless ``0 <= beta < 1``."""
    return check_real(name, beta, "in [0, 1)", lambda x: 0.0 <= x < 1.0)


def check_betas(betas: object) -> tuple[float, float]:
    """Return ``(beta1, beta2)`` as floats, each checked to lie in ``[0, 1)``."""
    try:
        beta1, beta2 = betas  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    return check_beta("betas[0] (beta1)", beta1), check_beta("betas[1] (beta2)", beta2)


def check_eps(eps: object, name: str = "eps") -> float:
    """Return ``eps`` as a float; raise ``ValueError`` (naming it ``name``) unless ``0 <= eps < inf``."""
    return check_real(name, eps, "a finite number >= 0", lambda x: 0.0 <= x < math.inf)


def check_atan2_scale(name: str, value: object) -> float:
    """Return Adam-atan2's ``a`` or ``b`` as a float; raise ``ValueError`` unless ``0 < value < inf``."""
    return check_real(name, value, "a finite number > 0", lambda x: 0.0 < x < math.inf)


def check_weight_decay(weight_decay: object) -> float:
    """Return ``weight_decay`` as a float; raise ``ValueError`` unless it is finite and >= 0."""
    return check_real(
        "weight_decay", weight_decay, "a finite number >= 0", lambda x: 0.0 <= x < math.inf
    )


def check_hyperparameters(
    lr: object = LR,
    betas: object = BETAS,
    eps: object = EPS,
    weight_decay: object = WEIGHT_DECAY,
) -> dict[str, object]:
    """Validate all of Adam's numeric hyperparameters at once.

    Returns
    -------
    dict
        ``{"lr": float, "betas": (float, float), "eps": float, "weight_decay": float}``.

    Raises
    ------
    ValueError
        Naming the first argument out of its range (NaN is always refused).
    TypeError
        When an argument is not a real number.
    """
    return {
        "lr": check_lr(lr),
        "betas": check_betas(betas),
        "eps": check_eps(eps),
        "weight_decay": check_weight_decay(weight_decay),
    }
