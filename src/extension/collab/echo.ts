import type { EditorChange } from './changes';

function sameChange(a: EditorChange, b: EditorChange): boolean {
  return a.rangeOffset === b.rangeOffset && a.rangeLength === b.rangeLength && a.text === b.text;
}

/**
 * Tells the editor's own echo of a remote edit from a person's typing. Before a remote change is
 * applied to the editor, the change it will report is expected; the change event that reports
 * exactly that change while the edit is in flight is the echo and is not sent back to the shared
 * document. It is recognised by its content, not by the text it leaves: VS Code may apply the edit
 * on top of keystrokes it received first. VS Code reports a change before the edit that made it
 * resolves, so an expectation lives only while its edit is in flight.
 */
export class EchoGuard {
  private readonly pending = new Map<number, EditorChange>();
  private next = 1;

  /** Expects `change` from an edit about to be applied; settle the returned ticket when it resolves. */
  expect(change: EditorChange): number {
    const ticket = this.next++;
    this.pending.set(ticket, { ...change });
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
   * Whether an event with `changes` is the echo of an edit in flight. An echo is consumed: the same
   * change again is a person's edit.
   */
  match(changes: readonly EditorChange[]): boolean {
    if (this.pending.size === 0 || changes.length !== 1) return false;
    for (const [ticket, expected] of this.pending) {
      if (sameChange(expected, changes[0]!)) {
        this.pending.delete(ticket);
        return true;
      }
    }
    return false;
  }
}
