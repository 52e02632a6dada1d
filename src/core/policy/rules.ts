import { posix } from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import { AGENT_NAME_RE, type Role } from '../../protocol/principal';
import { PAIR_PREFIX } from '../../protocol/pair';
import { foldPathName } from '../shared/fold';
import { quote } from '../shared/text';
import { compileNameGlob, compilePathGlob, compileStarPattern, GlobSyntaxError } from '../shared/glob';

/**
 * The kinds of operation a policy rule can govern. `lease-conflict(PATH)` is a write into a path that
 * another agent holds a lease on: allowed with a warning unless a deny rule matches (exclusive leases).
 */
export type PolicyAction = 'read' | 'write' | 'exec' | 'network' | 'tool' | 'env' | 'lease-conflict';

/** A named, ordered list of rule strings such as `allow exec(npm run *)`. */
export interface Policy {
  id: string;
  rules: string[];
}

/** One rule after parsing; `index` is its 0-based position in the policy, `text` its trimmed source. */
export interface ParsedRule {
  effect: 'allow' | 'deny';
  action: PolicyAction;
  pattern: string;
  /** `agent` names a principal: an agent, or a pair guest as `pair:NAME` (written `@pair:NAME`). */
  selector: { kind: 'all' } | { kind: 'role'; role: Role } | { kind: 'agent'; name: string };
  text: string;
  index: number;
}

/**
 * A target prepared once per decision: `value` is what patterns match, `host` the host part
 * (network), `folded` the case-folded form of a path (read, write) that deny rules also match.
 */
export interface NormalizedTarget {
  value: string;
  host: string;
  folded?: string;
}

/** A precompiled pattern test for one action. */
export type Matcher = ((target: NormalizedTarget) => boolean) & {
  /** Path rules: the answer for a non-empty normal path depends on its last segment alone. */
  nameOnly?: boolean;
};

/** A matcher that remembers whether its glob looks at the last segment only. */
function pathMatcher(test: (target: NormalizedTarget) => boolean, nameOnly: boolean | undefined): Matcher {
  return Object.assign(test, { nameOnly: nameOnly === true });
}

/** A parsed rule together with its precompiled matcher. */
export interface CompiledRule {
  rule: ParsedRule;
  match: Matcher;
}

/** Every action name, in the order used by messages. */
export const POLICY_ACTIONS: readonly PolicyAction[] = [
  'read',
  'write',
  'exec',
  'network',
  'tool',
  'env',
  'lease-conflict',
];

/** The built-in policy: read/write anywhere except git internals and secrets; no exec, no network. */
export const DEFAULT_POLICY: Policy = Object.freeze({
  id: 'default',
  rules: Object.freeze([
    'allow read(**)',
    'allow write(**)',
    'deny write(.git/**)',
    'deny read(**/.env*)',
    'deny write(**/.env*)',
    'deny read(**/*.pem)',
    'deny write(**/*.pem)',
    'deny read(**/*.key)',
    'deny write(**/*.key)',
    'deny read(**/id_*)',
    'deny write(**/id_*)',
    'deny write(**) @viewer',
  ]) as string[],
});

const MAX_ID_LENGTH = 128;
const MAX_RULES = 1000;
const MAX_RULE_LENGTH = 1000;
const MAX_CACHED_MATCHERS = 10_000;
const ROLES: readonly Role[] = ['owner', 'agent', 'viewer'];
const GRAMMAR =
  "Expected 'allow|deny ACTION(PATTERN)' optionally followed by '@owner', '@agent', '@viewer' or " +
  "'@agent:NAME' or '@pair:NAME' (a pair guest), where ACTION is one of read, write, exec, network, tool, env, lease-conflict.";

const matcherCache = new Map<string, Matcher>();

/**
 * Collapses runs of ASCII spaces and tabs so that `npm  test` and `npm test` are the same command.
 * Other whitespace is left alone on purpose: the exec check refuses it instead (a shell would not
 * read U+00A0 as a separator, so treating it as one here would judge a different command).
 */
export function normalizeCommand(command: string): string {
  return command.replace(/^[ \t]+|[ \t]+$/g, '').replace(/[ \t]+/g, ' ');
}

/** A path that `posix.normalize` might change: a `.` or `..` segment, an empty segment, a trailing slash. */
const NOT_NORMAL = /(?:^|\/)\.{1,2}(?:\/|$)|\/\/|\/$/;

/** Whether `path` is a non-empty path that {@link normalizePath} returns unchanged. */
export function isNormalPath(path: string): boolean {
  return path !== '' && !NOT_NORMAL.test(path);
}

/** Normalizes a workspace-relative posix path; the root becomes the empty string. */
export function normalizePath(path: string): string {
  // Most paths (every path a walk builds) are normal already: no `.` or `..` segment, no empty one.
  if (path !== '' && !NOT_NORMAL.test(path)) return path;
  let p = posix.normalize(path === '' ? '.' : path);
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '.') return '';
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** Splits `host`, `host:port` or `[v6]:port` and returns the host part. */
export function hostOf(target: string): string {
  if (target.startsWith('[')) {
    const end = target.indexOf(']');
    return end === -1 ? target : target.slice(0, end + 1);
  }
  const colon = target.indexOf(':');
  return colon !== -1 && colon === target.lastIndexOf(':') ? target.slice(0, colon) : target;
}

/** Prepares a target for matching against rules of `action`. */
export function normalizeTarget(action: PolicyAction, target: string): NormalizedTarget {
  let value: string;
  switch (action) {
    case 'read':
    case 'write':
    case 'lease-conflict':
      value = normalizePath(target);
      return { value, host: value, folded: foldPathName(value) };
    case 'exec':
      value = normalizeCommand(target);
      break;
    case 'network':
      value = target.trim().toLowerCase();
      return { value, host: hostOf(value) };
    default:
      value = target;
  }
  return { value, host: value };
}

/** Builds the matcher for `pattern` under `action`; throws GlobSyntaxError when the pattern is malformed. */
function buildMatcher(action: PolicyAction, pattern: string): Matcher {
  switch (action) {
    case 'read':
    case 'write':
    case 'lease-conflict': {
      const re = compilePathGlob(pattern);
      return pathMatcher((t) => re.test(t.value), re.nameOnly);
    }
    case 'exec': {
      const command = normalizeCommand(pattern);
      if (!command.includes('*')) {
        const prefix = command + ' ';
        return (t) => t.value === command || t.value.startsWith(prefix);
      }
      const re = compileStarPattern(command);
      return (t) => re.test(t.value);
    }
    case 'network': {
      const lowered = pattern.toLowerCase();
      const re = compileStarPattern(lowered);
      if (hostOf(lowered) !== lowered) return (t) => re.test(t.value);
      return (t) => re.test(t.host) || re.test(t.value);
    }
    case 'tool':
    case 'env': {
      const re = compileNameGlob(pattern);
      return (t) => re.test(t.value);
    }
  }
}

/**
 * A deny rule on paths also matches the case-folded path against the folded pattern, so that on a
 * case-insensitive or normalising file system `.GIT/config` is refused like `.git/config`. Allow
 * rules match exactly: folding only ever widens what is refused.
 */
function buildFoldedDenyMatcher(pattern: string): Matcher {
  const exact = compilePathGlob(pattern);
  const foldedPattern = foldPathName(pattern);
  if (foldedPattern === pattern) {
    // A pattern that is its own folded form: a target that is its own folded form needs one test.
    return pathMatcher(
      (t) => exact.test(t.value) || (t.folded !== undefined && t.folded !== t.value && exact.test(t.folded)),
      exact.nameOnly,
    );
  }
  const folded = compilePathGlob(foldedPattern);
  // Folding works character by character: the folded path's last segment is the folded name.
  return pathMatcher(
    (t) => exact.test(t.value) || (t.folded !== undefined && folded.test(t.folded)),
    exact.nameOnly === true && folded.nameOnly === true,
  );
}

/** Returns the cached matcher for `(effect, action, pattern)`, compiling it on first use. */
function matcherFor(effect: 'allow' | 'deny', action: PolicyAction, pattern: string): Matcher {
  const foldedDeny =
    effect === 'deny' && (action === 'read' || action === 'write' || action === 'lease-conflict');
  const key = `${foldedDeny ? 'fold' : ''}\u0000${action}\u0000${pattern}`;
  let matcher = matcherCache.get(key);
  if (!matcher) {
    matcher = foldedDeny ? buildFoldedDenyMatcher(pattern) : buildMatcher(action, pattern);
    if (matcherCache.size >= MAX_CACHED_MATCHERS) matcherCache.clear();
    matcherCache.set(key, matcher);
  }
  return matcher;
}

/** The INVALID_POLICY error for rule `index` (shown 1-based) with a description of the problem. */
function ruleError(index: number, text: string, problem: string): WorkspaceError {
  return new WorkspaceError(
    'INVALID_POLICY',
    `Policy rule ${index + 1} ${quote(text)} is invalid: ${problem}. ${GRAMMAR}`,
    { ruleIndex: index, rule: text },
  );
}

/** Parses the selector written after the closing parenthesis (without the '@'). */
function parseSelector(index: number, text: string, tail: string): ParsedRule['selector'] {
  if (tail === '') return { kind: 'all' };
  if (!tail.startsWith('@')) {
    throw ruleError(index, text, `unexpected text ${quote(tail)} after ')'`);
  }
  const selector = tail.slice(1).trim();
  if ((ROLES as readonly string[]).includes(selector)) return { kind: 'role', role: selector as Role };
  for (const prefix of ['agent:', PAIR_PREFIX]) {
    if (!selector.startsWith(prefix)) continue;
    const name = selector.slice(prefix.length);
    if (!AGENT_NAME_RE.test(name)) {
      throw ruleError(
        index,
        text,
        `${quote(name)} is not a valid ${prefix === PAIR_PREFIX ? 'pair guest' : 'agent'} name (letters, digits, '.', '_', '-'; at most 64 characters)`,
      );
    }
    // A pair guest is the agent principal `pair:NAME`; an agent name never holds ':', so
    // `@agent:NAME` can never select a guest, nor `@pair:NAME` an agent.
    return { kind: 'agent', name: prefix === PAIR_PREFIX ? PAIR_PREFIX + name : name };
  }
  throw ruleError(index, text, `unknown selector ${quote('@' + selector)}`);
}

/** Parses and compiles one rule; throws INVALID_POLICY naming the rule on any syntax error. */
export function compileRule(text: string, index: number): CompiledRule {
  if (typeof text !== 'string') throw ruleError(index, String(text), 'a rule must be a string');
  const trimmed = text.trim();
  if (trimmed === '') throw ruleError(index, text, 'the rule is empty');

  const effectMatch = /^(\S+)\s+/.exec(trimmed);
  const effect = effectMatch ? effectMatch[1] : trimmed.split(/[\s(]/)[0];
  if (effect !== 'allow' && effect !== 'deny') {
    throw ruleError(index, trimmed, `it must start with 'allow' or 'deny', not ${quote(effect)}`);
  }
  if (!effectMatch) throw ruleError(index, trimmed, `'${effect}' must be followed by ACTION(PATTERN)`);

  const rest = trimmed.slice(effectMatch[0].length);
  const open = rest.indexOf('(');
  const actionText = (open === -1 ? rest.split(/\s/)[0] : rest.slice(0, open)).trim();
  if (!(POLICY_ACTIONS as readonly string[]).includes(actionText)) {
    throw ruleError(index, trimmed, `unknown action ${quote(actionText)}`);
  }
  const action = actionText as PolicyAction;
  if (open === -1) throw ruleError(index, trimmed, `missing '(' after '${action}'`);
  const close = rest.lastIndexOf(')');
  if (close < open) throw ruleError(index, trimmed, "missing ')' after the pattern");

  const pattern = rest.slice(open + 1, close).trim();
  if (pattern === '') throw ruleError(index, trimmed, 'the pattern is empty');
  const selector = parseSelector(index, trimmed, rest.slice(close + 1).trim());

  let match: Matcher;
  try {
    match = matcherFor(effect, action, pattern);
  } catch (err) {
    if (!(err instanceof GlobSyntaxError)) throw err;
    throw ruleError(index, trimmed, `the pattern ${quote(pattern)} is malformed: ${err.message}`);
  }
  const rule: ParsedRule = Object.freeze({
    effect,
    action,
    pattern,
    selector: Object.freeze(selector),
    text: trimmed,
    index,
  });
  return { rule, match };
}

/** Parses one rule string; `index` is its 0-based position. Throws INVALID_POLICY when malformed. */
export function parseRule(text: string, index: number): ParsedRule {
  return compileRule(text, index).rule;
}

/** Checks a policy's shape and compiles every rule; returns a detached copy of the policy. */
export function compilePolicy(value: unknown): { policy: Policy; rules: CompiledRule[] } {
  const invalid = (message: string) => new WorkspaceError('INVALID_POLICY', message);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(
      'A policy must be a JSON object of the form {"id": "...", "rules": ["allow read(**)", ...]}.',
    );
  }
  const { id, rules } = value as { id?: unknown; rules?: unknown };
  if (typeof id !== 'string' || id.trim() === '' || id.length > MAX_ID_LENGTH) {
    throw invalid(`The policy "id" must be a non-empty string of at most ${MAX_ID_LENGTH} characters.`);
  }
  if (!Array.isArray(rules)) throw invalid('The policy "rules" must be an array of rule strings.');
  if (rules.length > MAX_RULES) {
    throw invalid(`The policy has ${rules.length} rules; at most ${MAX_RULES} are allowed.`);
  }
  const compiled = rules.map((rule: unknown, index) => {
    if (typeof rule !== 'string') {
      throw invalid(
        `Policy rule ${index + 1} must be a string, got ${rule === null ? 'null' : typeof rule}.`,
      );
    }
    if (rule.length > MAX_RULE_LENGTH) {
      throw invalid(
        `Policy rule ${index + 1} is ${rule.length} characters long; at most ${MAX_RULE_LENGTH}.`,
      );
    }
    return compileRule(rule, index);
  });
  return { policy: { id, rules: [...(rules as string[])] }, rules: compiled };
}

/** Validates an untrusted value as a Policy (shape and every rule); throws INVALID_POLICY. */
export function validatePolicy(value: unknown): Policy {
  return compilePolicy(value).policy;
}
