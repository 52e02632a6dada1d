import type { PolicyAction } from '../../policy';
import type { ConfinedPath, ResourceManager } from '../../resources';
import type { Authorize } from '../types';

/** Whether a path's last component is followed (false for delete and move: they act on the link). */
export interface PathOptions {
  followFinal: boolean;
}

/** Acts on the link itself, not where it points (delete_file, move_file). */
export const AT_LOCATION: PathOptions = { followFinal: false };

/**
 * Resolves `path` once (on held descriptors), decides on the path as asked and, when a symlink
 * redirects it, on where it really lands, and returns that same resolution for the I/O: no path
 * string is looked up again after the decision. The caller closes it (see {@link closing}).
 */
export function authorizePath(
  resources: ResourceManager,
  authorize: Authorize,
  action: PolicyAction,
  path: string,
  options: PathOptions & { writeGuard?: ((path: string) => void) | undefined } = { followFinal: true },
): ConfinedPath {
  const asked = resources.normalize(path);
  authorize(action, asked);
  const resolved = resources.resolve(path, { followFinal: options.followFinal });
  try {
    if (resolved.realRel !== asked) authorize(action, resolved.realRel);
    if (action === 'write') options.writeGuard?.(resolved.realRel);
  } catch (err) {
    resolved.close();
    throw err;
  }
  return resolved;
}

/** Runs `fn`, then closes the resolved paths whatever happened. */
export async function closing<T>(paths: ConfinedPath[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    for (const path of paths) path.close();
  }
}
