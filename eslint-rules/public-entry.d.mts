import type { Rule } from 'eslint';

/** The `mcpw/public-entry` rule (see public-entry.mjs). */
declare const rule: Rule.RuleModule;
export default rule;
