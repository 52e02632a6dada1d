// ESLint rule: code imports another component only through that component's public entry (its
// index.ts). A component is a folder under src/core/ or media/, or one of src/gateway, src/server,
// src/cli, src/extension. Inside a component anything goes. src/protocol and src/core/shared are
// libraries of small public modules: any file directly in them may be imported. Tests may reach
// into internals (the rule covers src/ and media/ only).
import { dirname, relative, resolve, sep } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const LIBRARIES = new Set(['src/protocol', 'src/core/shared']);
// The host-webview contract: browser-safe modules the webview bundle (media/) shares with the
// extension host. The bundle cannot import the extension's entry, which loads `vscode`.
const SHARED_MODULES = new Set(['src/extension/webview/protocol', 'src/extension/webview/model']);

/** The component folder (repo-relative, POSIX) a repo-relative path belongs to, or null. */
function componentOf(rel) {
  const parts = rel.split('/');
  if (parts[0] === 'src' && parts[1] === 'core' && parts.length > 3) return `src/core/${parts[2]}`;
  if (parts[0] === 'src' && parts.length > 2) return `src/${parts[1]}`;
  if (parts[0] === 'media' && parts.length > 2) return `media/${parts[1]}`;
  return null;
}

/** Whether `rel` (repo-relative, no extension) is the public entry of `component`. */
function isPublicEntry(rel, component) {
  if (rel === component || rel === `${component}/index`) return true;
  if (SHARED_MODULES.has(rel)) return true;
  if (LIBRARIES.has(component)) return dirname(rel) === component;
  return false;
}

const toPosix = (p) => p.split(sep).join('/');

export default {
  meta: {
    type: 'problem',
    docs: { description: 'Import other components only through their public entry (index.ts).' },
    messages: {
      internal:
        "'{{source}}' reaches into {{component}}; import from its public entry ('{{entry}}') and export what you need there.",
    },
    schema: [],
  },
  create(context) {
    const file = toPosix(relative(ROOT, context.filename));
    const from = componentOf(file);
    if (from === null) return {};
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = toPosix(relative(ROOT, resolve(dirname(context.filename), source))).replace(
        /\.(ts|js)$/,
        '',
      );
      const component =
        componentOf(target.endsWith('/index') ? target : `${target}/x`) ?? componentOf(target);
      if (component === null || component === from) return;
      if (isPublicEntry(target, component)) return;
      const entry = toPosix(relative(dirname(file), component));
      context.report({
        node,
        messageId: 'internal',
        data: { source, component, entry: entry.startsWith('.') ? entry : `./${entry}` },
      });
    };
    const fromSource = (node) => node.source && check(node.source, node.source.value);
    return {
      ImportDeclaration: fromSource,
      ExportNamedDeclaration: fromSource,
      ExportAllDeclaration: fromSource,
      ImportExpression: (node) => node.source.type === 'Literal' && check(node.source, node.source.value),
    };
  },
};
