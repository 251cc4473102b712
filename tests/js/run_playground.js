// Runs the cases of tests/test_playground_js.py through _static/adam-playground.js
// under Node: reads a JSON list of cases from the file named by argv[2], writes
// the results as JSON to stdout, one result per case.
"use strict";
const fs = require("fs");
const path = require("path");
const AP = require(path.join(__dirname, "..", "..", "_static", "adam-playground.js"));

function run(c) {
  switch (c.kind) {
    case "adam": {
      const opt = new AP.Adam(c.params.length, c.options);
      const p = Float64Array.from(c.params);
      c.grads.forEach((g, t) => {
        if (c.lrs) opt.lr = c.lrs[t];
        opt.step(p, g);
      });
      return { params: Array.from(p), m: Array.from(opt.m), v: Array.from(opt.v),
        vmax: Array.from(opt.vmax), t: opt.t };
    }
    case "sgd": {
      const opt = new AP.SGD(c.params.length, c.options);
      const p = Float64Array.from(c.params);
      c.grads.forEach((g) => opt.step(p, g));
      return { params: Array.from(p) };
    }
    case "problem": {
      const pr = c.problem === "rosenbrock" ? AP.rosenbrock
        : AP.bowl(c.kappa, c.angle);
      return { f: c.points.map(([x, y]) => pr.f(x, y)),
        grad: c.points.map(([x, y]) => pr.grad(x, y)) };
    }
    case "descend": {
      const pr = c.problem === "rosenbrock" ? AP.rosenbrock
        : AP.bowl(c.kappa, c.angle);
      const opt = c.optimizer === "adam" ? new AP.Adam(2, c.options)
        : new AP.SGD(2, c.options);
      return { path: AP.descend(pr, opt, c.steps) };
    }
    case "reddi":
      return { xs: AP.reddi(c.C, c.steps, c.options) };
    case "updateSize":
      return { sizes: c.scales.map((s) => AP.updateSize(s, c.eps, c.options)) };
    case "error": {
      try {
        if (c.optimizer === "adam") new AP.Adam(c.size, c.options);
        else new AP.SGD(c.size, c.options);
      } catch (e) {
        return { name: e.name, message: e.message };
      }
      return { name: null };
    }
    default:
      throw new Error("unknown case kind " + c.kind);
  }
}

const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
process.stdout.write(JSON.stringify(cases.map(run)));
