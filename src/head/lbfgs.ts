// Unconstrained L-BFGS (two-loop recursion) with the Moré–Thuente line search, following scipy's L-BFGS-B
// driver: same stopping tests (pgtol on max |g|, factr-style relative reduction), step rules and restarts.
// One generator holds the algorithm; minimize() and minimizeAsync() only feed it objective values.

/** Objective and gradient: writes ∇f(x) into `grad` and returns f(x). Must not keep `x` or `grad`. */
export type FGrad = (x: Float64Array, grad: Float64Array) => number;

/** FGrad for kernels that compute off the JS thread or in chunks (ONNX Runtime sessions are async). */
export type FGradAsync = (x: Float64Array, grad: Float64Array) => Promise<number>;

/** What the solver asks its driver for: f(x), with ∇f(x) written into `grad`. */
interface EvalRequest {
  x: Float64Array;
  grad: Float64Array;
}

export interface LbfgsOptions {
  /** Iterations (accepted steps). Default 15000, scipy's. */
  maxIter?: number;
  /** Objective evaluations, line searches included. Default 15000, scipy's maxfun. */
  maxEval?: number;
  /** Stop when max_i |g_i| <= gtol (scipy's pgtol without bounds). Default 1e-5. */
  gtol?: number;
  /** Stop when (f_prev - f) / max(|f_prev|, |f|, 1) <= ftol. Default 2.22e-9, scipy's factr=1e7; 0 disables. */
  ftol?: number;
  /** Correction pairs kept. Default 10. */
  memory?: number;
  /** Evaluations allowed per line search. Default 20, scipy's maxls. */
  maxLineSearch?: number;
  /** Called after each accepted step with the iteration count (1-based), f and max |g|. */
  onIteration?: (iter: number, f: number, gradMaxAbs: number) => void;
  /**
   * The max |g| the gtol test reads, given g and its own max |g| (default: that). A problem solved in other
   * coordinates than the caller's (rowspace.ts) passes the gradient's size in the caller's coordinates here.
   */
  gradMaxAbs?: (g: Float64Array, own: number) => number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  grad: Float64Array;
  gradMaxAbs: number;
  iterations: number;
  evaluations: number;
  /** True when stopped by the gtol or ftol test (scipy's status 0). */
  converged: boolean;
  message: string;
}

/** scipy's L-BFGS-B default ftol (factr = 1e7), which scikit-learn 1.2 leaves in place. */
export const SCIPY_DEFAULT_FTOL = 2.220446049250313e-9;

// Moré–Thuente parameters L-BFGS-B's lnsrlb passes to dcsrch.
const LS_FTOL = 1e-3;
const LS_GTOL = 0.9;
const LS_XTOL = 0.1;
const STPMAX = 1e10;

function dot(a: Float64Array, b: Float64Array, n: number, ao: number, bo: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}

/** max |a[i]| over [from, to) (the whole array by default); NaN when one of them is NaN. */
export function maxAbs(a: Float64Array, from = 0, to = a.length): number {
  let m = 0;
  for (let i = from; i < to; i++) {
    const v = Math.abs(a[i]!);
    if (v > m) m = v;
    else if (v !== v) return NaN; // a NaN gradient must never pass the gtol test
  }
  return m;
}

/** The best point so far (x) and the other end of the interval of uncertainty (y), as in MINPACK-2. */
interface Bracket {
  stx: number;
  fx: number;
  dx: number;
  sty: number;
  fy: number;
  dy: number;
  brackt: boolean;
}

/** MINPACK-2 dcstep: safeguarded cubic/quadratic step; updates the bracket `b`, returns the next trial step. */
function dcstep(b: Bracket, stp: number, fp: number, dp: number, stpmin: number, stpmax: number): number {
  const { stx, fx, dx, sty, fy, dy } = b;
  const sgnd = dp * (dx / Math.abs(dx));
  let stpf: number;
  if (fp > fx) {
    // Higher value: minimum bracketed; take the cubic step if closer to stx, else halfway to the quadratic.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s));
    if (stp < stx) gamma = -gamma;
    const p = gamma - dx + theta;
    const q = gamma - dx + gamma + dp;
    const stpc = stx + (p / q) * (stp - stx);
    const stpq = stx + (dx / ((fx - fp) / (stp - stx) + dx) / 2) * (stp - stx);
    stpf = Math.abs(stpc - stx) < Math.abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2;
    b.brackt = true;
  } else if (sgnd < 0) {
    // Derivatives of opposite sign: bracketed; the cubic or secant step, whichever is farther from stp.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dx;
    const stpc = stp + (p / q) * (stx - stp);
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
    b.brackt = true;
  } else if (Math.abs(dp) < Math.abs(dx)) {
    // Same sign, |derivative| decreasing: the cubic is used only if it heads the right way.
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = Math.max(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt(Math.max(0, (theta / s) ** 2 - (dx / s) * (dp / s)));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma + (dx - dp) + gamma;
    const r = p / q;
    let stpc: number;
    if (r < 0 && gamma !== 0) stpc = stp + r * (stx - stp);
    else if (stp > stx) stpc = stpmax;
    else stpc = stpmin;
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (b.brackt) {
      stpf = Math.abs(stpc - stp) < Math.abs(stpq - stp) ? stpc : stpq;
      if (stp > stx) stpf = Math.min(stp + 0.66 * (sty - stp), stpf);
      else stpf = Math.max(stp + 0.66 * (sty - stp), stpf);
    } else {
      stpf = Math.abs(stpc - stp) > Math.abs(stpq - stp) ? stpc : stpq;
      stpf = Math.max(stpmin, Math.min(stpmax, stpf));
    }
  } else if (b.brackt) {
    // Same sign, |derivative| not decreasing, bracketed: cubic between stp and sty.
    const theta = (3 * (fp - fy)) / (sty - stp) + dy + dp;
    const s = Math.max(Math.abs(theta), Math.abs(dy), Math.abs(dp));
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dy / s) * (dp / s));
    if (stp > sty) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dy;
    stpf = stp + (p / q) * (sty - stp);
  } else {
    stpf = stp > stx ? stpmax : stpmin;
  }
  if (fp > fx) {
    b.sty = stp;
    b.fy = fp;
    b.dy = dp;
  } else {
    if (sgnd < 0) {
      b.sty = stx;
      b.fy = fx;
      b.dy = dx;
    }
    b.stx = stp;
    b.fx = fp;
    b.dx = dp;
  }
  return stpf;
}

type SearchStatus = 'fg' | 'converged' | 'warning';

/** MINPACK-2 dcsrch state after `task = 'START'`: finds a step satisfying the strong Wolfe conditions. */
class MoreThuente {
  private readonly b: Bracket;
  private stage: 1 | 2 = 1;
  private readonly finit: number;
  private readonly ginit: number;
  private readonly gtest: number;
  private width: number;
  private width1: number;
  private stmin = 0;
  private stmax: number;
  warning = '';

  constructor(f0: number, g0: number, stp: number, private readonly stpmin: number, private readonly stpmax: number) {
    this.finit = f0;
    this.ginit = g0;
    this.gtest = LS_FTOL * g0;
    this.width = stpmax - stpmin;
    this.width1 = this.width / 0.5;
    this.b = { stx: 0, fx: f0, dx: g0, sty: 0, fy: f0, dy: g0, brackt: false };
    this.stmax = stp + 4 * stp;
  }

  /** Feeds f and f' at `stp`; returns whether to stop and, if not, the next step to evaluate. */
  next(stp: number, f: number, g: number): { status: SearchStatus; stp: number } {
    const b = this.b;
    const ftest = this.finit + stp * this.gtest;
    if (this.stage === 1 && f <= ftest && g >= 0) this.stage = 2;
    let warning = '';
    if (b.brackt && (stp <= this.stmin || stp >= this.stmax)) warning = 'rounding errors prevent progress';
    if (b.brackt && this.stmax - this.stmin <= LS_XTOL * this.stmax) warning = 'xtol test satisfied';
    if (stp === this.stpmax && f <= ftest && g <= this.gtest) warning = 'step at upper bound';
    if (stp === this.stpmin && (f > ftest || g >= this.gtest)) warning = 'step at lower bound';
    if (f <= ftest && Math.abs(g) <= LS_GTOL * -this.ginit) return { status: 'converged', stp };
    if (warning) {
      this.warning = warning;
      return { status: 'warning', stp };
    }
    if (this.stage === 1 && f <= b.fx && f > ftest) {
      // ψ(stp) = f - stp·gtest until a step with sufficient decrease and f' >= 0 is found.
      const gt = this.gtest;
      const m: Bracket = {
        stx: b.stx, fx: b.fx - b.stx * gt, dx: b.dx - gt,
        sty: b.sty, fy: b.fy - b.sty * gt, dy: b.dy - gt, brackt: b.brackt,
      };
      stp = dcstep(m, stp, f - stp * gt, g - gt, this.stmin, this.stmax);
      b.stx = m.stx; b.sty = m.sty; b.brackt = m.brackt;
      b.fx = m.fx + m.stx * gt; b.fy = m.fy + m.sty * gt;
      b.dx = m.dx + gt; b.dy = m.dy + gt;
    } else {
      stp = dcstep(b, stp, f, g, this.stmin, this.stmax);
    }
    if (b.brackt) {
      // Bisect when the interval did not shrink enough over two steps.
      if (Math.abs(b.sty - b.stx) >= 0.66 * this.width1) stp = b.stx + 0.5 * (b.sty - b.stx);
      this.width1 = this.width;
      this.width = Math.abs(b.sty - b.stx);
      this.stmin = Math.min(b.stx, b.sty);
      this.stmax = Math.max(b.stx, b.sty);
    } else {
      this.stmin = stp + 1.1 * (stp - b.stx);
      this.stmax = stp + 4 * (stp - b.stx);
    }
    stp = Math.max(stp, this.stpmin);
    stp = Math.min(stp, this.stpmax);
    if ((b.brackt && (stp <= this.stmin || stp >= this.stmax)) || (b.brackt && this.stmax - this.stmin <= LS_XTOL * this.stmax)) {
      stp = b.stx;
    }
    return { status: 'fg', stp };
  }
}

/**
 * Minimises f from x0. Unconstrained L-BFGS-B in effect: first step 1/‖d‖, then unit steps; a failed line
 * search restores the last point and restarts from steepest descent, and gives up only if that fails too.
 */
export function minimize(fgrad: FGrad, x0: Float64Array, opts: LbfgsOptions = {}): LbfgsResult {
  const steps = lbfgsSteps(x0, opts);
  let r = steps.next();
  while (!r.done) r = steps.next(fgrad(r.value.x, r.value.grad));
  return r.value;
}

/** minimize() for an async objective: the same iterates, step for step, as the sync driver. */
export async function minimizeAsync(fgrad: FGradAsync, x0: Float64Array, opts: LbfgsOptions = {}): Promise<LbfgsResult> {
  const steps = lbfgsSteps(x0, opts);
  let r = steps.next();
  while (!r.done) r = steps.next(await fgrad(r.value.x, r.value.grad));
  return r.value;
}

/**
 * The algorithm, written once for both drivers: it yields each point to evaluate and is resumed with f
 * there (the gradient written into the request's buffer), so sync and async objectives share every step.
 */
function* lbfgsSteps(x0: Float64Array, opts: LbfgsOptions): Generator<EvalRequest, LbfgsResult, number> {
  const maxIter = opts.maxIter ?? 15000;
  const maxEval = opts.maxEval ?? 15000;
  const gtol = opts.gtol ?? 1e-5;
  const ftol = opts.ftol ?? SCIPY_DEFAULT_FTOL;
  const m = opts.memory ?? 10;
  const maxLs = opts.maxLineSearch ?? 20;
  const n = x0.length;
  if (!(maxIter >= 0) || !(gtol >= 0) || !(ftol >= 0) || !(m >= 1) || !(maxLs >= 1)) {
    throw new RangeError(`lbfgs: invalid options ${JSON.stringify({ maxIter, gtol, ftol, memory: m, maxLineSearch: maxLs })}`);
  }

  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);
  const d = new Float64Array(n);
  // Ring buffers of correction pairs, row k = pair k (row-major, one contiguous block each).
  const S = new Float64Array(m * n);
  const Y = new Float64Array(m * n);
  const rho = new Float64Array(m);
  const alpha = new Float64Array(m);
  let pairs = 0;
  let head = 0; // slot the next pair goes into
  let gamma = 1; // H0 = gamma·I, gamma = s'y / y'y of the newest pair

  const gradSize = opts.gradMaxAbs ? (v: Float64Array) => opts.gradMaxAbs!(v, maxAbs(v)) : maxAbs;
  let f: number = yield { x, grad: g };
  let evals = 1;
  let gmax = gradSize(g);
  let iter = 0;
  const done = (converged: boolean, message: string): LbfgsResult => ({
    x, f, grad: g, gradMaxAbs: gmax, iterations: iter, evaluations: evals, converged, message,
  });
  if (!Number.isFinite(f)) return done(false, 'objective is not finite at the starting point');
  if (gmax <= gtol) return done(true, 'converged: max |gradient| <= gtol');

  for (;;) {
    if (iter >= maxIter) return done(false, `stopped: reached maxIter = ${maxIter}`);
    if (evals >= maxEval) return done(false, `stopped: reached maxEval = ${maxEval}`);

    // d = -H·g by the two-loop recursion, newest pair first. Each pass over d also takes the dot product the next
    // step needs, in the same order (the same numbers as separate passes, with half the sweeps over memory), and the
    // last one d·g and d·d.
    const slot = (t: number) => (head - 1 - t + m) % m;
    let next = 0;
    let dg = 0;
    let dd = 0;
    if (pairs === 0) {
      for (let i = 0; i < n; i++) {
        const v = -g[i]!;
        d[i] = v;
        dg += v * g[i]!;
        dd += v * v;
      }
    } else {
      let so = slot(0) * n;
      for (let i = 0; i < n; i++) {
        const v = -g[i]!;
        d[i] = v;
        next += S[so + i]! * v;
      }
      for (let t = 0; t < pairs; t++) {
        const k = slot(t);
        const a = rho[k]! * next;
        alpha[k] = a;
        const yo = k * n;
        next = 0;
        if (t + 1 < pairs) {
          so = slot(t + 1) * n;
          for (let i = 0; i < n; i++) {
            const v = d[i]! - a * Y[yo + i]!;
            d[i] = v;
            next += S[so + i]! * v;
          }
        } else {
          // Then d *= gamma, and the second loop's first dot (the oldest pair's y).
          const o = slot(pairs - 1) * n;
          for (let i = 0; i < n; i++) {
            const v = (d[i]! - a * Y[yo + i]!) * gamma;
            d[i] = v;
            next += Y[o + i]! * v;
          }
        }
      }
      for (let t = pairs - 1; t >= 0; t--) {
        const k = slot(t);
        const c = alpha[k]! - rho[k]! * next;
        const o = k * n;
        next = 0;
        if (t > 0) {
          const yo = slot(t - 1) * n;
          for (let i = 0; i < n; i++) {
            const v = d[i]! + c * S[o + i]!;
            d[i] = v;
            next += Y[yo + i]! * v;
          }
        } else {
          for (let i = 0; i < n; i++) {
            const v = d[i]! + c * S[o + i]!;
            d[i] = v;
            dg += v * g[i]!;
            dd += v * v;
          }
        }
      }
    }
    const fresh = pairs === 0;
    if (!(dg < 0)) {
      if (fresh) return done(false, 'abnormal termination: gradient gives no descent direction');
      // Lost positive definiteness to rounding: forget the pairs and retry from steepest descent.
      pairs = 0;
      head = 0;
      continue;
    }
    const dnorm = Math.sqrt(dd);
    // Unscaled steepest descent (first iteration, or after a restart) starts at a unit-length step.
    let stp = fresh ? Math.min(1 / dnorm, STPMAX) : 1;

    const ls = new MoreThuente(f, dg, stp, 0, STPMAX);
    let fNew = f;
    let ok = false;
    let lsEvals = 0;
    for (;;) {
      for (let i = 0; i < n; i++) xNew[i] = x[i]! + stp * d[i]!;
      fNew = yield { x: xNew, grad: gNew };
      evals++;
      lsEvals++;
      if (!Number.isFinite(fNew)) {
        // Overflow on a long trial step: shrink towards the last good point instead of feeding dcsrch Inf.
        stp *= 0.1;
        if (lsEvals >= maxLs || evals >= maxEval) break;
        continue;
      }
      dg = dot(gNew, d, n, 0, 0);
      const r = ls.next(stp, fNew, dg);
      if (r.status === 'converged') {
        ok = true;
        break;
      }
      if (r.status === 'warning') {
        // dcsrch's warnings still leave a usable point when it decreased f (L-BFGS-B accepts it too).
        ok = fNew < f;
        break;
      }
      stp = r.stp;
      if (lsEvals >= maxLs || evals >= maxEval) break;
    }
    if (!ok) {
      if (fresh) return done(false, 'abnormal termination in line search');
      pairs = 0;
      head = 0;
      continue;
    }

    // Accept: s = xNew - x, y = gNew - g go straight into the ring buffer.
    const o = head * n;
    let gs = 0;
    let sy = 0;
    let yy = 0;
    for (let i = 0; i < n; i++) {
      const si = xNew[i]! - x[i]!;
      const yi = gNew[i]! - g[i]!;
      S[o + i] = si;
      Y[o + i] = yi;
      gs += g[i]! * si;
      sy += si * yi;
      yy += yi * yi;
    }
    const fOld = f;
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = fNew;
    iter++;
    gmax = gradSize(g);
    opts.onIteration?.(iter, f, gmax);

    // Skip pairs without enough curvature (L-BFGS-B's test: s'y > eps·(-g's)), keeping H positive definite.
    if (sy > Number.EPSILON * -gs && yy > 0) {
      rho[head] = 1 / sy;
      gamma = sy / yy;
      head = (head + 1) % m;
      if (pairs < m) pairs++;
    }

    if (gmax <= gtol) return done(true, 'converged: max |gradient| <= gtol');
    if (fOld - f <= ftol * Math.max(Math.abs(fOld), Math.abs(f), 1)) {
      return done(true, 'converged: relative reduction of f <= ftol');
    }
  }
}
