/** Longest user-supplied text quoted whole in an error message; longer text is cut and marked. */
const MAX_QUOTED_CHARS = 200;

/**
 * Quotes user-supplied text (a path, a rule, a pattern) for an error message: JSON string syntax,
 * so control characters and quotes are visible, shortened when very long.
 */
export function quote(text: string): string {
  return JSON.stringify(text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}...` : text);
}
