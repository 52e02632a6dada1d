import type { RemoteEntry } from './remote';

/** One change seen on the host, by workspace-relative path. */
export interface RemoteChange {
  type: 'created' | 'changed' | 'deleted';
  path: string;
}

/** Default time between two polls of the watched directories. */
export const DEFAULT_POLL_MS = 1500;

/** What a directory looked like at the last poll: entry name -> type, size and mtime. */
type Snapshot = Map<string, string>;

function fingerprint(entry: RemoteEntry): string {
  return `${entry.type}:${entry.size ?? ''}:${entry.mtimeMs}`;
}

/**
 * Reflects the host's changes to a pair guest by polling: only the directories the guest has
 * listed (the folders it expanded or opened files in) are re-listed, one request each per period,
 * and the differences are reported as created/changed/deleted. Cheap and honest: nothing is
 * reported that the guest cannot see, and a directory nobody looks at costs nothing. A failing
 * poll (the link expired, the host went away) is reported once through `onError`.
 */
export class RemotePoller {
  private readonly snapshots = new Map<string, Snapshot>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private failed = false;

  constructor(
    private readonly list: (dir: string) => Promise<RemoteEntry[]>,
    private readonly onChanges: (changes: RemoteChange[]) => void,
    private readonly onError: (err: unknown) => void,
    private readonly periodMs = DEFAULT_POLL_MS,
  ) {}

  /** Records a listing the guest just made, so later polls compare against it. */
  remember(dir: string, entries: RemoteEntry[]): void {
    this.snapshots.set(dir, new Map(entries.map((entry) => [entry.name, fingerprint(entry)])));
    this.start();
  }

  /** Stops watching a directory (it was deleted, or its folder was closed). */
  forget(dir: string): void {
    this.snapshots.delete(dir);
  }

  /** Polls every remembered directory once now; returns the changes it reported. */
  async pollOnce(): Promise<RemoteChange[]> {
    if (this.polling) return [];
    this.polling = true;
    const changes: RemoteChange[] = [];
    try {
      for (const [dir, before] of [...this.snapshots]) {
        let entries: RemoteEntry[];
        try {
          entries = await this.list(dir);
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'NOT_FOUND' || code === 'NOT_A_DIRECTORY') {
            // The directory went away: its deletion is reported by its parent's listing.
            this.snapshots.delete(dir);
            continue;
          }
          throw err;
        }
        if (!this.snapshots.has(dir)) continue;
        const after: Snapshot = new Map(entries.map((entry) => [entry.name, fingerprint(entry)]));
        const join = (name: string): string => (dir === '' || dir === '.' ? name : `${dir}/${name}`);
        for (const [name, print] of after) {
          const old = before.get(name);
          if (old === undefined) changes.push({ type: 'created', path: join(name) });
          else if (old !== print) changes.push({ type: 'changed', path: join(name) });
        }
        for (const name of before.keys()) {
          if (!after.has(name)) {
            changes.push({ type: 'deleted', path: join(name) });
            this.forgetTree(join(name));
          }
        }
        this.snapshots.set(dir, after);
      }
      this.failed = false;
      if (changes.length > 0) this.onChanges(changes);
      return changes;
    } catch (err) {
      if (!this.failed) this.onError(err);
      this.failed = true;
      return changes;
    } finally {
      this.polling = false;
    }
  }

  /** Stops polling. */
  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.snapshots.clear();
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.pollOnce(), this.periodMs);
    this.timer.unref?.();
  }

  private forgetTree(path: string): void {
    for (const dir of [...this.snapshots.keys()]) {
      if (dir === path || dir.startsWith(`${path}/`)) this.snapshots.delete(dir);
    }
  }
}
