/*
 * adam-playground.js: a small float64 Adam, and the book's interactive figures.
 *
 * `Adam` is adamlib.Adam (and so torch.optim.Adam) option for option, on a plain
 * array of float64 numbers; `SGD` is adamlib.baselines.SGD (heavy-ball momentum
 * as torch writes it). tests/test_playground_js.py runs both under Node and
 * holds them to adamlib to 1e-12 over every option and hundreds of steps.
 *
 * In a page, every <div class="adam-playground" data-widget="..."> becomes a
 * figure computed live in the browser: no server, no network. The widgets are
 *   trajectory  a 2-D problem (bowl or Rosenbrock): paths over contours, loss
 *   epsilon     Adam's update size against the gradient's scale, for one eps
 *   reddi       Reddi et al.'s online counterexample, Adam beside AMSGrad
 */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.AdamPlayground = factory();
    if (typeof document !== "undefined") {
      if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", root.AdamPlayground.mountAll);
      } else {
        root.AdamPlayground.mountAll();
      }
    }
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  // -- the optimizers ----------------------------------------------------------
  function check(name, x, ok, what) {
    if (typeof x !== "number" || !ok(x)) {
      throw new RangeError(name + " must be " + what + ", got " + x);
    }
    return x;
  }
  const finite = Number.isFinite;
  const isBeta = (b) => finite(b) && b >= 0 && b < 1;

  /**
   * Adam over a float64 vector, updated in place by step(params, grads):
   *   g <- -g if maximize
   *   g <- g + wd*p (L2)   or   p <- p*(1 - lr*wd) (decoupled, AdamW)
   *   m <- lerp(m, g, 1 - b1),  v <- b2*v + (1 - b2)*g*g
   *   vmax <- max(vmax, v) if amsgrad (on the raw v)
   *   p <- p - lr/(1 - b1^t) * m / (sqrt(v or vmax)/sqrt(1 - b2^t) + eps)
   * each operation in adamlib.Adam's order, t counting from 1.
   */
  class Adam {
    constructor(size, options) {
      const o = Object.assign({
        lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0,
        amsgrad: false, maximize: false, decoupledWeightDecay: false,
        biasCorrection: true,
      }, options || {});
      check("size", size, (n) => Number.isInteger(n) && n >= 0,
        "an integer >= 0");
      this.lr = check("lr", o.lr, (x) => finite(x) && x >= 0, "finite, >= 0");
      if (!Array.isArray(o.betas) || o.betas.length !== 2) {
        throw new RangeError("betas must be a pair, got " + o.betas);
      }
      check("betas[0]", o.betas[0], isBeta, "in [0, 1)");
      check("betas[1]", o.betas[1], isBeta, "in [0, 1)");
      this.betas = o.betas.slice();
      this.eps = check("eps", o.eps, (x) => finite(x) && x >= 0,
        "finite, >= 0");
      this.weightDecay = check("weightDecay", o.weightDecay,
        (x) => finite(x) && x >= 0, "finite, >= 0");
      this.amsgrad = Boolean(o.amsgrad);
      this.maximize = Boolean(o.maximize);
      this.decoupledWeightDecay = Boolean(o.decoupledWeightDecay);
      this.biasCorrection = Boolean(o.biasCorrection);
      this.t = 0;
      this.m = new Float64Array(size);
      this.v = new Float64Array(size);
      this.vmax = new Float64Array(size);
    }

    step(p, g) {
      if (p.length !== this.m.length || g.length !== this.m.length) {
        throw new RangeError("params and grads must have length "
          + this.m.length + ", got " + p.length + " and " + g.length);
      }
      this.t += 1;
      const t = this.t, lr = this.lr, wd = this.weightDecay;
      const b1 = this.betas[0], b2 = this.betas[1];
      const bc1 = this.biasCorrection ? 1 - b1 ** t : 1;
      const bc2 = this.biasCorrection ? 1 - b2 ** t : 1;
      const w = 1 - b1, rootBc2 = Math.sqrt(bc2), scale = -lr / bc1;
      const m = this.m, v = this.v, vmax = this.vmax;
      for (let i = 0; i < p.length; i++) {
        let gi = this.maximize ? -g[i] : g[i];
        if (wd !== 0) {
          if (this.decoupledWeightDecay) p[i] *= 1 - lr * wd;
          else gi = gi + p[i] * wd;
        }
        const d = gi - m[i];  // lerp from the nearer end, as torch.lerp
        m[i] = w < 0.5 ? m[i] + d * w : gi - d * (1 - w);
        v[i] = v[i] * b2;
        v[i] = v[i] + (gi * gi) * (1 - b2);
        let second = v[i];
        if (this.amsgrad) {
          vmax[i] = Math.max(vmax[i], v[i]);
          second = vmax[i];
        }
        const denom = Math.sqrt(second) / rootBc2 + this.eps;
        p[i] = p[i] + (m[i] / denom) * scale;
      }
    }
  }

  /** Gradient descent with heavy-ball momentum: b <- mu*b + g, p <- p - lr*b. */
  class SGD {
    constructor(size, options) {
      const o = Object.assign({ lr: 1e-3, momentum: 0 }, options || {});
      this.lr = check("lr", o.lr, (x) => finite(x) && x >= 0, "finite, >= 0");
      this.momentum = check("momentum", o.momentum, isBeta, "in [0, 1)");
      this.buf = new Float64Array(size);
    }

    step(p, g) {
      for (let i = 0; i < p.length; i++) {
        if (this.momentum === 0) {
          p[i] -= this.lr * g[i];
        } else {
          this.buf[i] = this.buf[i] * this.momentum + g[i];
          p[i] -= this.lr * this.buf[i];
        }
      }
    }
  }

  // -- the problems ------------------------------------------------------------
  /** f(x, y) = (u^2 + kappa w^2)/2, (u, w) = (x, y) rotated by angle (deg). */
  function bowl(kappa, angle) {
    const c = Math.cos(angle * Math.PI / 180);
    const s = Math.sin(angle * Math.PI / 180);
    return {
      name: "bowl", box: [-3, 3, -3, 3], start: [-2.5, 2.5],
      f(x, y) {
        const u = c * x + s * y, w = -s * x + c * y;
        return 0.5 * (u * u + kappa * w * w);
      },
      grad(x, y) {
        const u = c * x + s * y, w = -s * x + c * y;
        const gu = u, gw = kappa * w;
        return [c * gu - s * gw, s * gu + c * gw];
      },
    };
  }

  /** Rosenbrock's valley, f = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1). */
  const rosenbrock = {
    name: "rosenbrock", box: [-2, 2, -1, 3], start: [-1.5, 2.5],
    f(x, y) { return (1 - x) ** 2 + 100 * (y - x * x) ** 2; },
    grad(x, y) {
      const r = y - x * x;
      return [-2 * (1 - x) - 400 * x * r, 200 * r];
    },
  };

  /** Run an optimizer on a 2-D problem; the points visited, start included. */
  function descend(problem, optimizer, steps) {
    const p = Float64Array.from(problem.start);
    const path = [[p[0], p[1]]];
    for (let t = 0; t < steps; t++) {
      optimizer.step(p, problem.grad(p[0], p[1]));
      if (!finite(p[0]) || !finite(p[1])) break;
      path.push([p[0], p[1]]);
    }
    return path;
  }

  /**
   * Reddi et al. (2018), Theorem 1: f_t(x) = C x if t mod 3 == 1 else -x on
   * [-1, 1], from x = 1. The paper's Adam and AMSGrad are this file's Adam
   * with no bias correction and eps = 0, at lr/sqrt(t) (or constant), each
   * step projected back onto [-1, 1]. Returns x_1, ..., x_{T+1}.
   */
  function reddi(C, steps, options) {
    const o = Object.assign({ lr: 0.5, beta1: 0, beta2: 1 / (1 + C * C),
      amsgrad: false, decay: true }, options || {});
    const opt = new Adam(1, { lr: o.lr, betas: [o.beta1, o.beta2], eps: 0,
      amsgrad: o.amsgrad, biasCorrection: false });
    const x = Float64Array.of(1);
    const xs = [1];
    for (let t = 1; t <= steps; t++) {
      opt.lr = o.decay ? o.lr / Math.sqrt(t) : o.lr;
      opt.step(x, [t % 3 === 1 ? C : -1]);
      x[0] = Math.min(Math.max(x[0], -1), 1);
      xs.push(x[0]);
    }
    return xs;
  }

  /** A seeded uniform generator on [0, 1) (mulberry32), for the noise. */
  function uniform(seed) {
    let a = seed >>> 0;
    return function () {
      a = (a + 0x6D2B79F5) >>> 0;
      let r = Math.imul(a ^ (a >>> 15), 1 | a);
      r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
      return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
  }

  /**
   * Adam's mean |update|/lr over `steps` noisy gradients g = scale*(1 + z),
   * z uniform on [-2, 2] (signal 1, noise rms 1.15): the same for every
   * scale far above eps, and falling as scale/eps once the scale is below it.
   */
  function updateSize(scale, eps, options) {
    const o = Object.assign({ steps: 200, beta1: 0.9, beta2: 0.999 }, options);
    const rand = uniform(7);
    const opt = new Adam(1, { lr: 1, betas: [o.beta1, o.beta2], eps: eps });
    const p = Float64Array.of(0);
    let total = 0;
    for (let t = 0; t < o.steps; t++) {
      const before = p[0];
      opt.step(p, [scale * (1 + 4 * (rand() - 0.5))]);
      total += Math.abs(p[0] - before);
    }
    return total / o.steps;
  }

  // -- drawing -----------------------------------------------------------------
  const COLORS = { adam: "#d62728", sgd: "#1f77b4", momentum: "#2ca02c",
    amsgrad: "#9467bd" };
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140],
    [94, 201, 98], [253, 231, 37]];

  function viridis(s) {
    const x = Math.min(Math.max(s, 0), 1) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
    return VIRIDIS[i].map((c, k) => Math.round(c + f * (VIRIDIS[i + 1][k] - c)));
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(c);
    return node;
  }

  /** A canvas that fills its container's width and redraws on resize. */
  function figure(container, aspect, draw) {
    const canvas = el("canvas", { class: "ap-canvas", role: "img" });
    container.appendChild(canvas);
    const redraw = () => {
      const ratio = window.devicePixelRatio || 1;
      const w = Math.max(container.clientWidth, 200);
      const h = Math.round(w * aspect);
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, w, h);
      draw(ctx, w, h);
    };
    if (typeof ResizeObserver !== "undefined") {
      let last = 0;
      new ResizeObserver(() => {
        if (container.clientWidth !== last) {
          last = container.clientWidth;
          redraw();
        }
      }).observe(container);
    }
    return { canvas, redraw };
  }

  /** Axes: maps data to pixels, draws the frame, ticks and labels. */
  function axes(ctx, w, h, box, labels, options) {
    const o = Object.assign({ logY: false, ticksX: 5, ticksY: 5 }, options);
    const L = 48, R = 10, T = 10, B = 38;
    const [x0, x1, y0, y1] = box;
    const px = (x) => L + (x - x0) / (x1 - x0) * (w - L - R);
    const py = (y) => h - B - (y - y0) / (y1 - y0) * (h - T - B);
    ctx.strokeStyle = "#444";
    ctx.lineWidth = 1;
    ctx.strokeRect(L, T, w - L - R, h - T - B);
    ctx.fillStyle = "#222";
    ctx.font = "12px sans-serif";
    ctx.textAlign = "center";
    for (let i = 0; i <= o.ticksX; i++) {
      const x = x0 + (x1 - x0) * i / o.ticksX;
      ctx.fillText(o.fmtX ? o.fmtX(x) : +x.toFixed(2), px(x), h - B + 14);
    }
    ctx.textAlign = "right";
    for (let i = 0; i <= o.ticksY; i++) {
      const y = y0 + (y1 - y0) * i / o.ticksY;
      ctx.fillText(o.fmtY ? o.fmtY(y) : +y.toFixed(2), L - 4, py(y) + 4);
    }
    ctx.textAlign = "center";
    ctx.fillText(labels[0], L + (w - L - R) / 2, h - 6);
    ctx.save();
    ctx.translate(12, T + (h - T - B) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(labels[1], 0, 0);
    ctx.restore();
    return { px, py, L, R, T, B };
  }

  function polyline(ctx, points, color, ax, width) {
    ctx.strokeStyle = color;
    ctx.lineWidth = width || 2;
    ctx.beginPath();
    points.forEach(([x, y], i) => {
      if (i === 0) ctx.moveTo(ax.px(x), ax.py(y));
      else ctx.lineTo(ax.px(x), ax.py(y));
    });
    ctx.stroke();
  }

  function legend(ctx, entries, x, y) {
    ctx.font = "12px sans-serif";
    ctx.textAlign = "left";
    entries.forEach(([label, color], i) => {
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(x - 2, y + 16 * i - 11, ctx.measureText(label).width + 26, 15);
      ctx.fillStyle = color;
      ctx.fillRect(x, y + 16 * i - 6, 16, 3);
      ctx.fillStyle = "#222";
      ctx.fillText(label, x + 20, y + 16 * i);
    });
  }

  /** Level sets of f over the box by marching squares, on a log scale. */
  function contours(ctx, problem, ax, levels) {
    const n = 90, [x0, x1, y0, y1] = problem.box;
    const X = (i) => x0 + (x1 - x0) * i / n, Y = (j) => y0 + (y1 - y0) * j / n;
    const F = [];
    for (let j = 0; j <= n; j++) {
      F.push([]);
      for (let i = 0; i <= n; i++) F[j].push(Math.log10(problem.f(X(i), Y(j)) + 1e-12));
    }
    levels.forEach((level, k) => {
      ctx.strokeStyle = "rgb(" + viridis(k / (levels.length - 1)).join(",") + ")";
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let j = 0; j < n; j++) {
        for (let i = 0; i < n; i++) {
          const c = [F[j][i], F[j][i + 1], F[j + 1][i + 1], F[j + 1][i]];
          const xy = [[X(i), Y(j)], [X(i + 1), Y(j)], [X(i + 1), Y(j + 1)],
            [X(i), Y(j + 1)]];
          const cut = [];
          for (let e = 0; e < 4; e++) {
            const a = c[e], b = c[(e + 1) % 4];
            if ((a < level) !== (b < level)) {
              const s = (level - a) / (b - a), p = xy[e], q = xy[(e + 1) % 4];
              cut.push([p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])]);
            }
          }
          for (let e = 0; e + 1 < cut.length; e += 2) {
            ctx.moveTo(ax.px(cut[e][0]), ax.py(cut[e][1]));
            ctx.lineTo(ax.px(cut[e + 1][0]), ax.py(cut[e + 1][1]));
          }
        }
      }
      ctx.stroke();
    });
  }

  // -- controls ----------------------------------------------------------------
  let uid = 0;

  /**
   * A labelled range input with its value shown. `spec`: [key, label, min,
   * max, step, default, format] where format shows the slider's value.
   */
  function slider(form, spec, onChange) {
    const [key, label, min, max, step, value, format] = spec;
    const id = "ap-" + key + "-" + (++uid);
    const input = el("input", { type: "range", id, min, max, step,
      value, "data-key": key });
    const out = el("output", { for: id, "aria-live": "polite" });
    const show = () => { out.textContent = format(+input.value); };
    input.addEventListener("input", () => { show(); onChange(); });
    form.appendChild(el("div", { class: "ap-control" }, [
      el("label", { for: id, text: label }), input, out]));
    show();
    return { input, reset: () => { input.value = value; show(); } };
  }

  function panel(root, title, sliders, draw) {
    root.textContent = "";
    root.classList.add("ap-ready");
    root.appendChild(el("p", { class: "ap-title", text: title }));
    const body = el("div", { class: "ap-body" });
    const form = el("div", { class: "ap-controls" });
    root.appendChild(body);
    root.appendChild(form);
    const controls = {};
    const value = (k) => +controls[k].input.value;
    const update = () => draw(value);
    for (const spec of sliders) controls[spec[0]] = slider(form, spec, update);
    const reset = el("button", { type: "button", class: "ap-reset",
      text: "Reset" });
    reset.addEventListener("click", () => {
      Object.values(controls).forEach((c) => c.reset());
      update();
    });
    form.appendChild(reset);
    return { body, update, value };
  }

  const pow10 = (x) => 10 ** x;
  const sci = (x) => (x >= 1e-3 && x < 1e4 ? String(Number(x.toPrecision(2)))
    : x.toExponential(1).replace(".0e", "e").replace("e+", "e"));
  const fixed = (d) => (x) => x.toFixed(d);
  const logFmt = (x) => sci(pow10(x));

  // -- the widgets -------------------------------------------------------------
  const widgets = [];

  function trajectoryWidget(root) {
    const kind = root.dataset.problem || "bowl";
    const setups = {
      bowl: { lr: -1, sgd: -1.3, steps: 60, title: "Adam, gradient descent "
        + "and momentum on an ill-conditioned bowl" },
      rosenbrock: { lr: -1.3, sgd: -3, steps: 300, title: "Adam, gradient "
        + "descent and momentum in Rosenbrock's valley" },
    };
    const s = setups[kind] || setups.bowl;
    const specs = [
      ["lr", "Adam lr", -3, 0, 0.05, s.lr, logFmt],
      ["beta1", "β₁", 0, 0.99, 0.01, 0.9, fixed(2)],
      ["beta2", "β₂", 0.5, 0.9999, 0.0001, 0.999, fixed(4)],
      ["sgd", "GD, momentum lr", -4, 0, 0.05, s.sgd, logFmt],
      ["mu", "momentum μ", 0, 0.99, 0.01, 0.9, fixed(2)],
      ["steps", "steps", 10, 1000, 10, s.steps, fixed(0)],
    ];
    if (kind === "bowl") {
      specs.push(["kappa", "condition κ", 0, 2, 0.05, 1.4,
        (x) => pow10(x).toFixed(0)]);
      specs.push(["angle", "rotation (°)", 0, 90, 5, 0, fixed(0)]);
    }
    const state = {};
    const p = panel(root, s.title, specs, (val) => {
      const problem = kind === "rosenbrock" ? rosenbrock
        : bowl(pow10(val("kappa")), val("angle"));
      const steps = val("steps");
      const runs = [
        ["Adam", COLORS.adam, new Adam(2, { lr: pow10(val("lr")),
          betas: [val("beta1"), val("beta2")] })],
        ["gradient descent", COLORS.sgd, new SGD(2, { lr: pow10(val("sgd")) })],
        ["momentum", COLORS.momentum, new SGD(2, { lr: pow10(val("sgd")),
          momentum: val("mu") })],
      ].map(([label, color, opt]) => [label, color,
        descend(problem, opt, steps)]);
      state.runs = runs;
      state.problem = problem;
      root.dataset.signature = runs.map(([, , path]) =>
        path[path.length - 1].map((x) => x.toPrecision(8)).join(",")).join(";");
      plots.forEach((f) => f.redraw());
    });
    const plots = [
      figure(p.body, 0.8, (ctx, w, h) => {
        const pr = state.problem, ax = axes(ctx, w, h, pr.box, ["x", "y"]);
        ctx.save();
        ctx.beginPath();
        ctx.rect(ax.L, ax.T, w - ax.L - ax.R, h - ax.T - ax.B);
        ctx.clip();
        const levels = [];
        for (let k = -2; k <= 3; k += 0.5) levels.push(k);
        contours(ctx, pr, ax, levels);
        for (const [, color, path] of state.runs) polyline(ctx, path, color, ax);
        ctx.fillStyle = "#000";
        ctx.fillRect(ax.px(pr.start[0]) - 3, ax.py(pr.start[1]) - 3, 6, 6);
        ctx.restore();
        legend(ctx, state.runs.map(([l, c]) => [l, c]), ax.L + 8, ax.T + 14);
      }),
      figure(p.body, 0.45, (ctx, w, h) => {
        const steps = Math.max(...state.runs.map(([, , q]) => q.length)) - 1;
        const ax = axes(ctx, w, h, [0, Math.max(steps, 1), -12, 4],
          ["step", "log₁₀ loss"], { fmtX: (x) => x.toFixed(0),
            fmtY: (y) => y.toFixed(0), ticksY: 4 });
        for (const [, color, path] of state.runs) {
          const pts = path.map(([x, y], t) => [t,
            Math.max(Math.min(Math.log10(state.problem.f(x, y) + 1e-300), 4), -12)]);
          polyline(ctx, pts, color, ax, 1.5);
        }
      }),
    ];
    p.update();
    return { root, state };
  }

  function epsilonWidget(root) {
    const state = {};
    const p = panel(root, "Adam's step against the gradient's scale", [
      ["eps", "log₁₀ ε", -16, 0, 0.5, -8, logFmt],
      ["beta2", "β₂", 0.9, 0.9999, 0.0001, 0.999, fixed(4)],
      ["scale", "log₁₀ gradient scale", -14, 2, 0.5, -3, logFmt],
    ], (val) => {
      const eps = pow10(val("eps")), opts = { beta2: val("beta2") };
      const curve = [];
      for (let s = -14; s <= 2.001; s += 0.25) {
        curve.push([s, Math.log10(updateSize(pow10(s), eps, opts))]);
      }
      state.curve = curve;
      state.eps = val("eps");
      state.here = [val("scale"),
        Math.log10(updateSize(pow10(val("scale")), eps, opts))];
      root.dataset.signature = state.here[1].toPrecision(8) + ";"
        + curve.map((c) => c[1].toFixed(4)).join(",");
      plot.redraw();
    });
    const plot = figure(p.body, 0.6, (ctx, w, h) => {
      const ax = axes(ctx, w, h, [-14, 2, -10, 1],
        ["log₁₀ gradient scale", "log₁₀ mean |step| / lr"],
        { fmtX: (x) => x.toFixed(0), fmtY: (y) => y.toFixed(0),
          ticksX: 8, ticksY: 11 });
      ctx.setLineDash([4, 4]);
      polyline(ctx, [[state.eps, -10], [state.eps, 1]], "#777", ax, 1);
      ctx.setLineDash([]);
      polyline(ctx, state.curve.map(([x, y]) => [x, Math.max(y, -10)]),
        COLORS.adam, ax);
      ctx.fillStyle = "#000";
      ctx.beginPath();
      ctx.arc(ax.px(state.here[0]), ax.py(Math.max(state.here[1], -10)), 5,
        0, 2 * Math.PI);
      ctx.fill();
      legend(ctx, [["Adam", COLORS.adam], ["gradient scale = ε", "#777"]],
        ax.L + 8, ax.T + 14);
    });
    p.update();
    return { root, state };
  }

  function reddiWidget(root) {
    const state = {};
    const p = panel(root, "Reddi et al.'s counterexample: Adam and AMSGrad",
      [
        ["C", "C", 2.1, 10, 0.1, 3, fixed(1)],
        ["beta2", "log₁₀ β₂ (default 1/(1+C²))", -2, -0.0004, 0.01,
          Math.log10(0.1), (x) => pow10(x).toPrecision(3)],
        ["lr", "α (step α/√t)", -2, 0, 0.05, Math.log10(0.5), logFmt],
        ["steps", "steps", 30, 3000, 30, 600, fixed(0)],
      ], (val) => {
        const C = val("C"), steps = val("steps");
        const o = { lr: pow10(val("lr")), beta2: pow10(val("beta2")) };
        state.adam = reddi(C, steps, Object.assign({ amsgrad: false }, o));
        state.ams = reddi(C, steps, Object.assign({ amsgrad: true }, o));
        root.dataset.signature = [state.adam, state.ams].map(
          (xs) => xs[xs.length - 1].toPrecision(8)).join(";");
        plot.redraw();
      });
    const plot = figure(p.body, 0.55, (ctx, w, h) => {
      const n = state.adam.length - 1;
      const ax = axes(ctx, w, h, [0, n, -1.05, 1.05], ["step t", "x_t"],
        { fmtX: (x) => x.toFixed(0), ticksY: 2,
          fmtY: (y) => (Math.abs(y) < 0.01 ? "0" : y > 0 ? "+1" : "−1") });
      polyline(ctx, state.adam.map((x, t) => [t, x]), COLORS.adam, ax, 1.5);
      polyline(ctx, state.ams.map((x, t) => [t, x]), COLORS.amsgrad, ax, 1.5);
      legend(ctx, [["Adam (x → +1, the worst point)", COLORS.adam],
        ["AMSGrad (x → −1, the best)", COLORS.amsgrad]], ax.L + 8, ax.T + 14);
    });
    p.update();
    return { root, state };
  }

  const WIDGETS = { trajectory: trajectoryWidget, epsilon: epsilonWidget,
    reddi: reddiWidget };

  /** Turn every <div class="adam-playground" data-widget=...> into a figure. */
  function mountAll() {
    for (const root of document.querySelectorAll("div.adam-playground")) {
      if (root.classList.contains("ap-ready")) continue;
      const make = WIDGETS[root.dataset.widget];
      if (!make) {
        throw new Error("adam-playground: unknown data-widget "
          + root.dataset.widget);
      }
      widgets.push(make(root));
    }
  }

  return { Adam, SGD, bowl, rosenbrock, descend, reddi, updateSize,
    mountAll, widgets };
});
