/**
 * Nearest-rank `p`-th percentile of `samples` (in ms), rounded to microseconds.
 *
 * @param samples - Measurements in any order; the array is not modified. Empty gives 0.
 * @param p - Percentile from 0 to 100 (50 = median).
 */
export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[index] ?? 0) * 1000) / 1000;
}
