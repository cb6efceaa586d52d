/**
 * The keyless check of a policy YAML (pure): everything `policy sign` would refuse or warn
 * about, without a key or a root — schema, model checks, expiry, the compile budget and the
 * `tests:` block. `picket policy check` prints it; `policy sign` runs the same function, so
 * the two cannot disagree about what is acceptable.
 */
import { parsePolicyYaml, type Located } from './authoring.js';
import { compiledSize, overBudget } from './budget.js';
import type { Policy } from './model.js';
import { runPolicyTests, type TestOptions } from './tests.js';

export interface CheckReport {
  /** Set when the document parsed into a policy (schema and model checks passed). */
  policy?: Policy;
  /** Problems that make sign refuse: schema, model, expiry, budget, failing tests. */
  errors: Located[];
  /** What sign warns about (shadowed rules, an exception outliving the policy…). */
  warnings: Located[];
  /** Tests run and passed (both 0 when the policy did not get that far). */
  tests: { total: number; passed: number };
}

export function checkPolicyText(text: string, opts: TestOptions): CheckReport {
  const parsed = parsePolicyYaml(text, opts.now);
  if (!parsed.ok) return { errors: parsed.errors, warnings: [], tests: { total: 0, passed: 0 } };
  const { policy, locate } = parsed;
  const errors: Located[] = [];
  if (policy.expires <= opts.now) errors.push(locate({ path: ['expires'], message: `${new Date(policy.expires).toISOString()} is in the past` }));
  const over = overBudget(compiledSize(policy));
  if (over) errors.push(locate({ path: [], message: `too-large: v${policy.version} ${over}` }));
  const tests = runPolicyTests(policy, parsed.tests, opts);
  errors.push(...tests.problems.map(locate));
  return { policy, errors, warnings: parsed.warnings, tests: { total: tests.total, passed: tests.passed } };
}
