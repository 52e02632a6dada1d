import type { OperationOutput } from '../../protocol/operations';
import type { Principal } from '../../protocol/principal';
import {
  compilePolicy,
  DEFAULT_POLICY,
  isNormalPath,
  normalizeTarget,
  POLICY_ACTIONS,
  type CompiledRule,
  type ParsedRule,
  type Policy,
  type PolicyAction,
} from './rules';
import { isDangerousEnv, isDangerousTool, ProtectedPaths } from './protected';

export { DEFAULT_POLICY, parseRule, validatePolicy } from './rules';
export { gitHooksFolders } from './hooks';
export {
  CODE_WORKSPACE_SUFFIX,
  isDangerousEnv,
  isDangerousTool,
  PROTECTED_ROOT_FILES,
  PROTECTED_ROOT_FOLDERS,
} from './protected';
export type { ParsedRule, Policy, PolicyAction } from './rules';
export { PolicyStore } from './store';

/** The outcome of a policy check (the explain_policy result); `rule`/`ruleIndex` name the deciding rule (null when denied by default). */
export type PolicyDecision = OperationOutput<'explain_policy'>;

/** An immutable compiled snapshot of a policy; swapped as a whole by `set()`. */
interface CompiledPolicy {
  policy: Policy;
  rules: CompiledRule[];
  byAction: Map<PolicyAction, CompiledRule[]>;
}

/** Compiles `value` (validated) and groups its rules by action for fast lookups. */
function compile(value: unknown): CompiledPolicy {
  const { policy, rules } = compilePolicy(value);
  const byAction = new Map<PolicyAction, CompiledRule[]>(POLICY_ACTIONS.map((action) => [action, []]));
  for (const compiled of rules) byAction.get(compiled.rule.action)?.push(compiled);
  return { policy, rules, byAction };
}

/** Whether a rule's selector covers `principal`. */
function applies(rule: ParsedRule, principal: Principal): boolean {
  const selector = rule.selector;
  switch (selector.kind) {
    case 'all':
      return true;
    case 'role':
      return selector.role === principal.role;
    case 'agent':
      return principal.kind === 'agent' && principal.name === selector.name;
  }
}

/** Describes a principal for decision reasons, e.g. `agent 'bob'`. */
function describe(principal: Principal): string {
  if (principal.kind === 'owner') return 'the owner';
  return principal.role === 'viewer' ? `agent '${principal.name}' (viewer)` : `agent '${principal.name}'`;
}

/** Options of a {@link PolicyEngine}. */
export interface PolicyEngineOptions {
  /**
   * Workspace-relative folders protected like `.githooks/**` on top of the built-in list (the
   * `core.hooksPath` target of the workspace's repository).
   */
  protectedFolders?: readonly string[];
}

/** A normal path that leaves the workspace: absolute, or up from the root. */
const OUTSIDE = /^(?:\/|\.\.(?:\/|$))/;
/** Most file names one {@link PolicyEngine.pathDecider} remembers before it starts afresh. */
const MAX_MEMOISED_NAMES = 10_000;

/** What {@link PolicyEngine} found for one request: the deciding rule, or why there is none. */
type Verdict =
  | { kind: 'unknown' }
  | { kind: 'outside'; value: string }
  | { kind: 'deny' | 'allow'; value: string; rule: ParsedRule }
  | { kind: 'none'; value: string; explicit: ExplicitOnly | null };

/** An allow rule only counts when it names its target: what narrows `decide()` for one target. */
interface ExplicitOnly {
  /** Whether an allow rule names the target. */
  names: (rule: ParsedRule) => boolean;
  /** Why a broader allow rule was not enough, and what to add. */
  why: string;
}

/**
 * Evaluates a deny-by-default policy: any matching deny wins, else any matching allow, else denied.
 * Protected paths (for agents), `devcontainer.*` grants and program-loading env keys need an allow
 * rule that names them; a wildcard allow is not enough. Other env keys, and writes into another agent's
 * lease (`lease-conflict`), are allowed unless denied.
 */
export class PolicyEngine {
  private compiled: CompiledPolicy;
  private readonly listeners = new Set<(policy: Policy) => void>();
  private protectedPaths: ProtectedPaths;
  private explicitTools: ReadonlySet<string> = new Set();

  constructor(policy: Policy = DEFAULT_POLICY, options: PolicyEngineOptions = {}) {
    this.compiled = compile(policy);
    this.protectedPaths = new ProtectedPaths(options.protectedFolders);
  }

  /** Replaces the extra protected folders (e.g. after `core.hooksPath` changed). */
  setProtectedFolders(folders: readonly string[]): void {
    this.protectedPaths = new ProtectedPaths(folders);
  }

  /**
   * Tool names only a rule naming them exactly may allow (detected tools: a project file that an
   * agent may write decides what they run, so `allow tool(*)` never grants them).
   */
  setExplicitTools(names: Iterable<string>): void {
    this.explicitTools = new Set(names);
  }

  /** The protected-path class of a workspace-relative path (e.g. `.vscode/**`), or null. */
  protectedClass(path: string): string | null {
    return this.protectedPaths.classify(normalizeTarget('write', path).value)?.shown ?? null;
  }

  /** A copy of the active policy. */
  get policy(): Policy {
    const { id, rules } = this.compiled.policy;
    return { id, rules: [...rules] };
  }

  /** The parsed rules of the active policy, in order. */
  rules(): ParsedRule[] {
    return this.compiled.rules.map((compiled) => compiled.rule);
  }

  /** Validates and activates `policy` in one step (the old one stays on error), then notifies listeners. */
  set(policy: Policy): void {
    this.compiled = compile(policy);
    const snapshot = this.policy;
    let failure: { error: unknown } | undefined;
    for (const listener of [...this.listeners]) {
      try {
        listener({ id: snapshot.id, rules: [...snapshot.rules] });
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }

  /** Decides whether `principal` may perform `action` on `target` (path, command, host[:port] or tool). */
  decide(principal: Principal, action: PolicyAction, target: string): PolicyDecision {
    const verdict = this.evaluate(principal, action, target);
    const value = verdict.kind === 'unknown' ? '' : verdict.value;
    const shown = `${action}(${value === '' ? '.' : value})`;
    switch (verdict.kind) {
      case 'unknown':
        return {
          allowed: false,
          rule: null,
          ruleIndex: null,
          reason: `unknown action '${action}' (deny by default)`,
        };
      case 'outside':
        return { allowed: false, rule: null, ruleIndex: null, reason: `${shown} is outside the workspace` };
      case 'deny':
      case 'allow':
        return {
          allowed: verdict.kind === 'allow',
          rule: verdict.rule.text,
          ruleIndex: verdict.rule.index,
          reason: `${verdict.kind === 'allow' ? 'allowed' : 'denied'} by rule ${verdict.rule.index + 1}: ${verdict.rule.text}`,
        };
    }
    if (action === 'lease-conflict') {
      return {
        allowed: true,
        rule: null,
        ruleIndex: null,
        reason: `${shown}: writes into another agent's lease succeed with a warning unless a \`deny lease-conflict(PATTERN)\` rule makes the lease exclusive`,
      };
    }
    if (action === 'env' && !isDangerousEnv(value)) {
      return {
        allowed: true,
        rule: null,
        ruleIndex: null,
        reason: `${shown} does not change how programs are found or loaded (allowed unless denied)`,
      };
    }
    return {
      allowed: false,
      rule: null,
      ruleIndex: null,
      reason: verdict.explicit
        ? `${verdict.explicit.why} (no such rule for ${describe(principal)})`
        : `no rule allows ${shown} for ${describe(principal)} (deny by default)`,
    };
  }

  /**
   * Whether {@link decide} would allow it, without building the explanation: for walks that decide
   * on every file they meet.
   */
  allows(principal: Principal, action: PolicyAction, target: string): boolean {
    const verdict = this.evaluate(principal, action, target);
    if (verdict.kind === 'allow') return true;
    if (verdict.kind !== 'none') return false;
    return action === 'lease-conflict' || (action === 'env' && !isDangerousEnv(verdict.value));
  }

  /**
   * {@link allows} for many paths of one `principal` and `action`, as a walk asks: the same answers,
   * memoised by file name when every rule that applies to `principal` for `action` looks at the
   * last path segment only (`**`, or `**` then one name pattern, as in the default policy). Only `read` is
   * memoised (a write decision also depends on the protected-path class of the whole path); a
   * policy change, a path that is not in normal form and the workspace root are decided afresh.
   */
  pathDecider(principal: Principal, action: 'read' | 'write'): (path: string) => boolean {
    const compiled = this.compiled;
    const rules = (compiled.byAction.get(action) ?? []).filter(({ rule }) => applies(rule, principal));
    if (action !== 'read' || !rules.every(({ match }) => match.nameOnly === true)) {
      return (path) => this.allows(principal, action, path);
    }
    const byName = new Map<string, boolean>();
    return (path) => {
      if (this.compiled !== compiled || !isNormalPath(path) || OUTSIDE.test(path)) {
        return this.allows(principal, action, path);
      }
      const name = path.slice(path.lastIndexOf('/') + 1);
      let allowed = byName.get(name);
      if (allowed === undefined) {
        allowed = this.allows(principal, action, path);
        if (byName.size >= MAX_MEMOISED_NAMES) byName.clear();
        byName.set(name, allowed);
      }
      return allowed;
    };
  }

  /** The rule that decides, or why none does: the one evaluation behind decide() and allows(). */
  private evaluate(principal: Principal, action: PolicyAction, target: string): Verdict {
    const rules = this.compiled.byAction.get(action);
    if (!rules) return { kind: 'unknown' };
    const normalized = normalizeTarget(action, String(target));
    const value = normalized.value;
    if ((action === 'read' || action === 'write') && OUTSIDE.test(value)) {
      return { kind: 'outside', value };
    }
    const explicit = this.explicitOnly(principal, action, value);
    let allow: ParsedRule | undefined;
    for (const { rule, match } of rules) {
      if ((rule.effect === 'allow' && allow) || !applies(rule, principal) || !match(normalized)) continue;
      if (rule.effect === 'allow' && explicit && !explicit.names(rule)) continue;
      if (rule.effect === 'deny') return { kind: 'deny', value, rule };
      allow = rule;
    }
    return allow ? { kind: 'allow', value, rule: allow } : { kind: 'none', value, explicit };
  }

  /** For targets that only a naming rule may allow: how to recognise such a rule. */
  private explicitOnly(principal: Principal, action: PolicyAction, target: string): ExplicitOnly | null {
    if (action === 'write' && principal.kind !== 'owner') {
      const cls = this.protectedPaths.classify(target);
      if (!cls) return null;
      return {
        names: (rule) => cls.named(rule.pattern),
        why:
          `${target} is a protected path (${cls.shown}): agents may write it only under a rule that ` +
          `names it, such as \`${cls.example}\`; \`allow write(**)\` is not enough`,
      };
    }
    if (action === 'tool' && isDangerousTool(target)) {
      return {
        names: (rule) => rule.pattern === target,
        why: `tool(${target}) weakens the sandbox: it needs the exact rule \`allow tool(${target})\`; a wildcard is not enough`,
      };
    }
    if (action === 'tool' && this.explicitTools.has(target)) {
      return {
        names: (rule) => rule.pattern === target,
        why:
          `tool(${target}) is detected from a project file, which decides what it runs: it needs the exact ` +
          `rule \`allow tool(${target})\`; a wildcard is not enough`,
      };
    }
    if (action === 'env' && isDangerousEnv(target)) {
      return {
        names: (rule) => rule.pattern === target,
        why:
          `env(${target}) changes how programs are found or loaded: it needs the exact rule ` +
          `\`allow env(${target})\`; a wildcard is not enough`,
      };
    }
    return null;
  }

  /** Subscribes to policy changes; returns an unsubscribe function. */
  onChange(listener: (policy: Policy) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
