/**
 * Tells the editor's own echo of a remote edit from a person's typing. Before a remote change is
 * applied to the editor, the text it will produce is expected (with a value the caller needs back);
 * the change event that produces exactly that text while the edit is in flight is the echo and is
 * not sent back to the shared document. VS Code reports a change before the edit that made it
 * resolves, so an expectation lives only while its edit is in flight.
 */
export class EchoGuard<T> {
  private readonly pending = new Map<number, { text: string; value: T }>();
  private next = 1;

  /** Expects `text` from an edit about to be applied; settle the returned ticket when it resolves. */
  expect(text: string, value: T): number {
    const ticket = this.next++;
    this.pending.set(ticket, { text, value });
    return ticket;
  }

  /** The edit of `ticket` resolved (applied or refused): its echo can no longer come. */
  settle(ticket: number): void {
    this.pending.delete(ticket);
  }

  /** Whether an edit is in flight. */
  get inFlight(): boolean {
    return this.pending.size > 0;
  }

  /**
   * The value expected with `text` when the change that produced it (read lazily: only while an
   * edit is in flight) is the echo of an applied edit, else undefined. An echo is consumed: the
   * same text again is a person's edit.
   */
  match(text: () => string): T | undefined {
    if (this.pending.size === 0) return undefined;
    const current = text();
    for (const [ticket, expected] of this.pending) {
      if (expected.text === current) {
        this.pending.delete(ticket);
        return expected.value;
      }
    }
    return undefined;
  }
}
