import type { Principal } from '../../protocol/principal';
import {
  compilePolicy,
  DEFAULT_POLICY,
  normalizeTarget,
  POLICY_ACTIONS,
  type CompiledRule,
  type ParsedRule,
  type Policy,
  type PolicyAction,
} from './rules';

export { DEFAULT_POLICY, parseRule, validatePolicy } from './rules';
export type { ParsedRule, Policy, PolicyAction } from './rules';
export { PolicyStore } from './store';

/** The outcome of a policy check; `rule`/`ruleIndex` name the deciding rule (null when denied by default). */
export interface PolicyDecision {
  allowed: boolean;
  rule: string | null;
  ruleIndex: number | null;
  reason: string;
}

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

/** Evaluates a deny-by-default policy: any matching deny wins, else any matching allow, else denied. */
export class PolicyEngine {
  private compiled: CompiledPolicy;
  private readonly listeners = new Set<(policy: Policy) => void>();

  constructor(policy: Policy = DEFAULT_POLICY) {
    this.compiled = compile(policy);
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
    const rules = this.compiled.byAction.get(action);
    const normalized = normalizeTarget(action, String(target));
    const shown = `${action}(${normalized.value === '' ? '.' : normalized.value})`;
    if (!rules) {
      return {
        allowed: false,
        rule: null,
        ruleIndex: null,
        reason: `unknown action '${action}' (deny by default)`,
      };
    }
    if ((action === 'read' || action === 'write') && /^(?:\/|\.\.(?:\/|$))/.test(normalized.value)) {
      return { allowed: false, rule: null, ruleIndex: null, reason: `${shown} is outside the workspace` };
    }
    let allow: ParsedRule | undefined;
    for (const { rule, match } of rules) {
      if ((rule.effect === 'allow' && allow) || !applies(rule, principal) || !match(normalized)) continue;
      if (rule.effect === 'deny') {
        return {
          allowed: false,
          rule: rule.text,
          ruleIndex: rule.index,
          reason: `denied by rule ${rule.index + 1}: ${rule.text}`,
        };
      }
      allow = rule;
    }
    if (allow) {
      return {
        allowed: true,
        rule: allow.text,
        ruleIndex: allow.index,
        reason: `allowed by rule ${allow.index + 1}: ${allow.text}`,
      };
    }
    return {
      allowed: false,
      rule: null,
      ruleIndex: null,
      reason: `no rule allows ${shown} for ${describe(principal)} (deny by default)`,
    };
  }

  /** Subscribes to policy changes; returns an unsubscribe function. */
  onChange(listener: (policy: Policy) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
