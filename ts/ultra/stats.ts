// Mean, sample std and a 95% confidence interval (Student's t) for results over seeds.
const T975 = [NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086];

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
