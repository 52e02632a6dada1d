import type { Handlers } from '../types';
import type { DispatcherDeps } from '../types';
import type { ConfinedPath } from '../../resources';
import { leaseWarnings } from './coordination';
import { AT_LOCATION, authorizePath, closing } from './paths';

/** Adds `warnings` to a result when there are any. */
function warn<T extends object>(result: T, warnings: string[]): T & { warnings?: string[] } {
  return warnings.length > 0 ? { ...result, warnings } : result;
}

/** The workspace paths a change of `target` touches: as asked and, through a symlink, where it lands. */
function touched(...targets: ConfinedPath[]): string[] {
  return targets.flatMap((t) => [t.rel, t.realRel]);
}

/** The file operations this group answers. */
export type FileOperation =
  | 'read_file'
  | 'write_file'
  | 'list_files'
  | 'file_info'
  | 'edit_file'
  | 'search_files'
  | 'create_directory'
  | 'delete_file'
  | 'move_file';

/** Workspace file operations: each path is resolved and decided once, and the I/O uses that resolution. */
export function fileHandlers(deps: DispatcherDeps): Handlers<FileOperation> {
  const { resources, policy, writeGuard, collab } = deps;
  // A write to a file open as a shared document reaches the document as a delta (see OpenDocuments).
  const coordinated = <T>(target: ConfinedPath, write: () => Promise<T>): Promise<T> =>
    collab ? collab.aroundWrite(target, write) : write();
  const follow = { followFinal: true, writeGuard };
  const atLocation = { ...AT_LOCATION, writeGuard };
  return {
    read_file: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'read', input.path);
      return closing([target], () =>
        resources.readFile(target, input.encoding ? { encoding: input.encoding } : {}),
      );
    },
    write_file: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'write', input.path, follow);
      return closing([target], async () => {
        const warnings = leaseWarnings(deps, ctx, touched(target));
        const result = await coordinated(target, () =>
          resources.writeFile(target, input.content, {
            ...(input.encoding ? { encoding: input.encoding } : {}),
            ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
          }),
        );
        return warn(result, warnings);
      });
    },
    list_files: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'read', input.path);
      return closing([target], () =>
        resources.listFiles(target, {
          ...(input.depth !== undefined ? { depth: input.depth } : {}),
          ...(input.includeIgnored !== undefined ? { includeIgnored: input.includeIgnored } : {}),
        }),
      );
    },
    file_info: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'read', input.path);
      return closing([target], () => resources.stat(target));
    },
    edit_file: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'read', input.path);
      return closing([target], async () => {
        ctx.authorize('write', target.rel);
        if (target.realRel !== target.rel) ctx.authorize('write', target.realRel);
        writeGuard?.(target.realRel);
        const warnings = input.dryRun ? [] : leaseWarnings(deps, ctx, touched(target));
        const result = await coordinated(target, () =>
          resources.edit(target, input.edits, {
            ...(input.dryRun !== undefined ? { dryRun: input.dryRun } : {}),
            ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
            // Large edits run on the worker threads, shared fairly per token.
            caller: `${ctx.principal.kind}:${ctx.principal.name}`,
          }),
        );
        return warn(result, warnings);
      });
    },
    search_files: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'read', input.path ?? '.');
      const principal = ctx.principal;
      return closing([target], () =>
        resources.search(input.query, {
          path: target,
          ...(input.regex !== undefined ? { regex: input.regex } : {}),
          ...(input.caseSensitive !== undefined ? { caseSensitive: input.caseSensitive } : {}),
          ...(input.glob !== undefined ? { glob: input.glob } : {}),
          ...(input.maxResults !== undefined ? { maxResults: input.maxResults } : {}),
          // Files the policy forbids reading (secrets) never show up in results: the search threads
          // decide on the policy in force when the search started.
          access: { policy: policy.policy, principal },
          // Fair shares of the search threads are per token.
          caller: `${principal.kind}:${principal.name}`,
        }),
      );
    },
    create_directory: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'write', input.path, follow);
      return closing([target], async () => {
        const warnings = leaseWarnings(deps, ctx, touched(target));
        return warn(await resources.mkdir(target), warnings);
      });
    },
    delete_file: async (input, ctx) => {
      const target = authorizePath(resources, ctx.authorize, 'write', input.path, atLocation);
      return closing([target], async () => {
        const warnings = leaseWarnings(deps, ctx, touched(target));
        const result = await resources.delete(target, {
          ...(input.recursive !== undefined ? { recursive: input.recursive } : {}),
          ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
        });
        return warn(result, warnings);
      });
    },
    move_file: async (input, ctx) => {
      const source = authorizePath(resources, ctx.authorize, 'write', input.from, atLocation);
      return closing([source], () => {
        const dest = authorizePath(resources, ctx.authorize, 'write', input.to, atLocation);
        return closing([dest], async () => {
          const warnings = leaseWarnings(deps, ctx, touched(source, dest));
          const result = await resources.move(source, dest, {
            ...(input.overwrite !== undefined ? { overwrite: input.overwrite } : {}),
            ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
          });
          return warn(result, warnings);
        });
      });
    },
  };
}
