"""The book's JavaScript Adam (``_static/adam-playground.js``), run under Node, against
adamlib: every option of :class:`adamlib.Adam` over hundreds of steps to 1e-12, the
baselines, the widgets' problems and Reddi et al.'s online counterexample."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import adamlib
from adamlib.baselines import SGD
from adamlib.lab import online, problems

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "js" / "run_playground.js"
NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (apt-get install nodejs)")
STEPS = 300


def node(cases: list[dict], tmp_path: Path) -> list[dict]:
    """Run ``cases`` through the JavaScript file under Node; its results, in order."""
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    out = subprocess.run([NODE, str(RUNNER), str(path)], capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout)


def gradients(seed: int, steps: int = STEPS, n: int = 6) -> np.ndarray:
    """Gradients on every scale the optimizer meets: ordinary, tiny, large and exact zeros."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((steps, n)) * 10.0 ** rng.integers(-6, 4, (steps, n))
    g[:, 0] *= 1e-20                    # squares far below eps
    g[rng.random((steps, n)) < 0.1] = 0  # zero gradients
    return g


OPTIONS = [
    dict(lr=lr, betas=betas, eps=eps, weight_decay=wd, decoupled_weight_decay=dec,
         amsgrad=ams, maximize=mx, bias_correction=bc)
    for lr, betas, eps in [(1e-3, (0.9, 0.999), 1e-8), (0.1, (0.0, 0.99), 1e-3),
                           (0.03, (0.5, 0.5), 1e-8), (0.01, (0.95, 0.9999), 1e-6)]
    for wd, dec in [(0.0, False), (0.1, False), (0.1, True)]
    for ams, mx, bc in itertools.product([False, True], repeat=3)
]


def js_options(o: dict) -> dict:
    return {"lr": o["lr"], "betas": list(o["betas"]), "eps": o["eps"],
            "weightDecay": o["weight_decay"], "decoupledWeightDecay": o["decoupled_weight_decay"],
            "amsgrad": o["amsgrad"], "maximize": o["maximize"],
            "biasCorrection": o["bias_correction"]}


def close(actual, expected, rtol: float = 1e-12) -> None:
    """Equal to ``rtol`` relative to each array's own scale (entries near 0 included)."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = np.max(np.abs(expected), initial=np.finfo(float).tiny)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def test_adam_matches_adamlib_for_every_option(tmp_path):
    cases, expected = [], []
    for k, o in enumerate(OPTIONS):
        g = gradients(k)
        p0 = np.random.default_rng(100 + k).standard_normal(g.shape[1])
        lrs = o["lr"] * np.linspace(1.0, 0.1, STEPS) if k % 2 else None  # a schedule
        p = p0.copy()
        opt = adamlib.Adam([p], **o)
        for t in range(STEPS):
            if lrs is not None:
                opt.lr = float(lrs[t])
            opt.step([g[t]])
        expected.append((p, opt))
        cases.append({"kind": "adam", "params": p0.tolist(), "grads": g.tolist(),
                      "options": js_options(o), "lrs": None if lrs is None else lrs.tolist()})
    results = node(cases, tmp_path)
    assert len(results) == len(OPTIONS) == 96
    for o, (p, opt), r in zip(OPTIONS, expected, results):
        assert r["t"] == STEPS, o
        close(r["params"], p)
        close(r["m"], opt.exp_avg[0])
        close(r["v"], opt.exp_avg_sq[0])
        if o["amsgrad"]:
            close(r["vmax"], opt.max_exp_avg_sq[0])


def test_the_defaults_are_adamlibs(tmp_path):
    g = gradients(7)
    p = np.ones(g.shape[1])
    opt = adamlib.Adam([p])
    for row in g:
        opt.step([row])
    (r,) = node([{"kind": "adam", "params": [1.0] * g.shape[1], "grads": g.tolist(),
                  "options": {}}], tmp_path)
    close(r["params"], p)


@pytest.mark.parametrize("momentum", [0.0, 0.9, 0.99])
def test_sgd_and_momentum_match_adamlib(tmp_path, momentum):
    g = gradients(3)
    p0 = np.linspace(-1, 1, g.shape[1])
    p = p0.copy()
    opt = SGD([p], lr=0.01, momentum=momentum)
    for row in g:
        opt.step([row])
    (r,) = node([{"kind": "sgd", "params": p0.tolist(), "grads": g.tolist(),
                  "options": {"lr": 0.01, "momentum": momentum}}], tmp_path)
    close(r["params"], p)


def bowl(kappa: float, angle: float):
    """The widget's bowl, (u^2 + kappa w^2)/2 turned by ``angle`` degrees: lab.problems'
    quadratic (curvatures 1/kappa and 1) scaled by kappa."""
    return problems.quadratic(kappa, np.radians(angle)).scaled(kappa)


PROBLEMS = [({"problem": "bowl", "kappa": 25.0, "angle": 0.0}, bowl(25.0, 0.0)),
            ({"problem": "bowl", "kappa": 10.0, "angle": 45.0}, bowl(10.0, 45.0)),
            ({"problem": "rosenbrock"}, problems.rosenbrock())]


def test_the_problems_values_and_gradients(tmp_path):
    points = np.random.default_rng(0).uniform(-2, 2, (50, 2))
    cases = [dict(spec, kind="problem", points=points.tolist()) for spec, _ in PROBLEMS]
    for (spec, problem), r in zip(PROBLEMS, node(cases, tmp_path)):
        f = problem.value
        close(r["f"], f(points))
        close(r["grad"], problem.grad(points))
        # the gradient is the loss's: a central difference agrees
        z, h = points[0], 1e-6
        fd = [(f(z + h * e) - f(z - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(r["grad"][0], fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec, problem", PROBLEMS, ids=["bowl", "rotated", "rosenbrock"])
def test_the_widgets_paths_are_adamlibs(tmp_path, spec, problem):
    """The trajectory a widget draws is adamlib.Adam's on the same problem."""
    grad = problem.grad
    start = [-1.5, 2.5] if spec["problem"] == "rosenbrock" else [-2.5, 2.5]
    p = np.array(start)
    opt = adamlib.Adam([p], lr=0.05, betas=(0.9, 0.99))
    path = [p.copy()]
    for _ in range(STEPS):
        opt.step([grad(p)])
        path.append(p.copy())
    (r,) = node([dict(spec, kind="descend", optimizer="adam", steps=STEPS,
                      options={"lr": 0.05, "betas": [0.9, 0.99]})], tmp_path)
    close(r["path"], path, rtol=1e-10)
    assert len(r["path"]) == STEPS + 1


def test_reddi_counterexample_matches_the_lab(tmp_path):
    """Adam without bias correction and eps, projected onto [-1, 1], is Reddi et al.'s."""
    C, steps = 3.0, 900
    beta2 = 1 / (1 + C**2)
    cases = [{"kind": "reddi", "C": C, "steps": steps, "options": {"amsgrad": ams, "lr": 0.5}}
             for ams in (False, True)]
    adam, ams = (np.array(r["xs"]) for r in node(cases, tmp_path))
    c = online.reddi_online(steps, C=C)
    for xs, rule in ((adam, "adam_paper"), (ams, "amsgrad_paper")):
        traj = online.run(c, rule, lr=0.5, beta1=0.0, beta2=beta2)
        close(xs[:-1], traj.x)
        close(xs[-1], traj.x_final)
    assert adam[-1] == 1.0 and ams[-1] < -0.9  # the worst point, and near the best


def test_update_size_is_scale_free_until_eps(tmp_path):
    """The epsilon widget's curve: flat for gradient scales far above eps, then ~scale/eps."""
    scales = [1.0, 1e-2, 1e-4, 1e-10, 1e-12]
    (r,) = node([{"kind": "updateSize", "scales": scales, "eps": 1e-8, "options": {}}], tmp_path)
    size = dict(zip(scales, r["sizes"]))
    np.testing.assert_allclose(size[1e-2], size[1.0], rtol=1e-5)
    np.testing.assert_allclose(size[1e-4], size[1.0], rtol=1e-3)
    assert size[1e-10] < 0.05 * size[1.0]
    np.testing.assert_allclose(size[1e-12] / size[1e-10], 1e-2, rtol=0.05)


@pytest.mark.parametrize("optimizer, options, name", [
    ("adam", {"lr": -1}, "lr"), ("adam", {"betas": [0.9, 1.0]}, "betas[1]"),
    ("adam", {"betas": [0.9]}, "betas"), ("adam", {"eps": -1e-8}, "eps"),
    ("adam", {"weightDecay": "0.1"}, "weightDecay"), ("sgd", {"momentum": 1}, "momentum"),
])
def test_bad_options_are_refused_by_name(tmp_path, optimizer, options, name):
    (r,) = node([{"kind": "error", "optimizer": optimizer, "size": 2, "options": options}],
                tmp_path)
    assert r["name"] == "RangeError"
    assert r["message"].startswith(name + " must be")
