// Mean, sample std and a 95% confidence interval (Student's t) for results over seeds.
const T975 = [NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086];

// t(0.95, df) for df = 1..30; beyond, the Cornish-Fisher expansion around z = 1.6449 (error < 1e-3).
const T95 = [NaN, 6.314, 2.92, 2.353, 2.132, 2.015, 1.943, 1.895, 1.86, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.74, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697];

/** The one-sided 95% quantile of Student's t with `df` degrees of freedom (NaN for df < 1). */
export function t95OneSided(df: number): number {
  if (!(df >= 1)) return NaN;
  if (df < T95.length) return T95[Math.floor(df)];
  const z = 1.6448536;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2);
}

export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sample standard deviation (n − 1); 0 for a single value. */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** t(0.975, n − 1) / √n: the 95% CI's half-width per unit of sample std; NaN for n < 2. */
export function ci95Factor(n: number): number {
  if (n < 2) return NaN;
  return (T975[Math.min(n - 1, T975.length - 1)] ?? 1.96) / Math.sqrt(n);
}

/** Half-width of the 95% CI of the mean; NaN for fewer than 2 values. */
export const ci95 = (xs: number[]): number => ci95Factor(xs.length) * std(xs);
