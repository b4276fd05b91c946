// Mean, sample std and a 95% confidence interval (Student's t) for results over seeds.
const T975 = [
  NaN,
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
];

// t(0.95, df) for df = 1..30; beyond, the Cornish-Fisher expansion around z = 1.6449 (error < 1e-3).
const T95 = [
  NaN,
  6.314,
  2.92,
  2.353,
  2.132,
  2.015,
  1.943,
  1.895,
  1.86,
  1.833,
  1.812,
  1.796,
  1.782,
  1.771,
  1.761,
  1.753,
  1.746,
  1.74,
  1.734,
  1.729,
  1.725,
  1.721,
  1.717,
  1.714,
  1.711,
  1.708,
  1.706,
  1.703,
  1.701,
  1.699,
  1.697,
];

/** The one-sided 95% quantile of Student's t with `df` degrees of freedom (NaN for df < 1). */
export function t95OneSided(df: number): number {
  if (!(df >= 1)) return NaN;
  if (df < T95.length) return T95[Math.floor(df)];
  const z = 1.6448536;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function median(xs: number[]): number {
  const o = [...xs].sort((a, b) => a - b);
  const h = Math.floor(o.length / 2);
  return o.length % 2 ? o[h] : (o[h - 1] + o[h]) / 2;
}

/** Sample standard deviation (n − 1); 0 for a single value. */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** t(0.975, n − 1) / √n: the 95% CI's half-width per unit of sample std; NaN for n < 2. */
export function ci95Factor(n: number): number {
  if (n < 2) return NaN;
  const df = n - 1;
  // past the table, the Cornish-Fisher expansion around z = 1.96 (error < 1e-3), so the CI agrees with the t-test's p
  const z = 1.959964;
  const t = df < T975.length ? T975[df] : z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
  return t / Math.sqrt(n);
}

/** Half-width of the 95% CI of the mean; NaN for fewer than 2 values. */
export const ci95 = (xs: number[]): number => ci95Factor(xs.length) * std(xs);

/** ln Γ(x) for x ≥ 0.5 (Lanczos, g = 7; about 15 significant digits). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  x -= 1;
  let a = c[0];
  for (let i = 1; i < c.length; i++) a += c[i] / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of I_x(a, b) (modified Lentz), which converges fast for x < (a + 1) / (a + b + 2). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  const step = (aa: number) => {
    d = 1 + aa * d;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    h *= c * d;
    return c * d;
  };
  for (let m = 1; m <= 300; m++) {
    step((m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)));
    if (Math.abs(step((-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))) - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), for a, b ≥ 0.5. */
export function betaInc(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // the fraction converges on one side of the mean; the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) covers the other
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** Two-sided p-value of Student's t: P(|T| ≥ |t|) = I_{df/(df+t²)}(df/2, 1/2); NaN for df < 1. */
export function tTwoSidedP(t: number, df: number): number {
  if (!(df >= 1) || Number.isNaN(t)) return NaN;
  return betaInc(df / 2, 0.5, df / (df + t * t));
}

/** Arm X against a reference arm on the same seeds: the per-seed differences X − ref, their mean with the paired-t
 * 95% CI and two-sided p (df = n − 1), and on how many seeds X was higher. Seeds pair the two because both arms
 * start from the seed's one base policy, so the seed's luck cancels out of the difference. CI and p: NaN for n < 2. */
export interface Paired {
  n: number;
  diffs: number[];
  mean: number;
  ci: [number, number];
  p: number;
  wins: number;
}

export function pairedDiff(xs: number[], ref: number[]): Paired {
  if (xs.length !== ref.length) throw new Error(`paired values need the same seeds: ${xs.length} vs ${ref.length} values`);
  const diffs = xs.map((x, i) => x - ref[i]);
  const n = diffs.length;
  const m = mean(diffs);
  const s = std(diffs);
  const half = ci95Factor(n) * s;
  // no spread at all: t is ±∞ (p = 0) unless every difference is 0 (p = 1), not 0/0
  const p = n < 2 ? NaN : s === 0 ? (m === 0 ? 1 : 0) : tTwoSidedP(m / (s / Math.sqrt(n)), n - 1);
  return { n, diffs, mean: m, ci: [m - half, m + half], p, wins: diffs.filter((d) => d > 0).length };
}
