/**
 * Policy tests (pure): the `tests:` block of the authoring YAML — "from this source to these
 * nodes, this connection is allowed / dropped" — evaluated by the same compile() and explain()
 * that enforcement and `picket explain` use, so a passing test says what the kernel will do.
 *
 * Tests are authoring-only: they are never encoded in the signed policy (a node has nothing to
 * do with them, and they would cost every node bytes and verify time). `policy check` runs
 * them without any key or root; `policy sign` refuses a policy whose tests fail.
 *
 * Directions: `ingress` (the default) — a connection from `from` (an IP or node:X's addresses)
 * arriving at each `to` node (node:X or role:X); `egress` — a connection each `from` node
 * (node:X or role:X) opens to `to` (an IP or node:X's addresses), as the output hook decides
 * it (under `settings.egress: allow` everything outbound passes, and a test says so).
 */
import { z } from 'zod';
import { compile, DEFAULT_MESH_PORT, type NodeRuleset } from './compile.js';
import { describeVerdict, explain, type Verdict } from './explain.js';
import { parseIp } from './ip.js';
import { findNode, PROTOS, type Path, type Policy, type PolicyNode, type Proto } from './model.js';

/** Directions a test can check (module comment). */
export const DIRECTIONS = ['ingress', 'egress'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/**
 * Bounds what a tests block may cost: each test compiles at most every node of the policy
 * (each node once, cached) and probes every address of its source node.
 */
export const MAX_TESTS = 1000;

/**
 * Bounds the (source address × target node) probes of the whole block: a test from a node
 * with 32 addresses to a role held by 10,000 nodes is 320,000 probes alone, and in CI the
 * file comes from a pull request. Checked before anything is compiled.
 */
export const MAX_PROBES = 200_000;

export interface PolicyTest {
  /** Ingress: an IP address, or `node:NAME|PEERID` (every address tried). Egress: the sending node(s), `node:` or `role:`. */
  from: string;
  /** Ingress: the receiving node(s), `node:NAME|PEERID` or `role:NAME` (every one must agree). Egress: an IP or `node:`. */
  to: string;
  proto: Proto;
  port?: number;
  expect: 'allow' | 'drop';
  direction: Direction;
}

const shownText = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);

export const PolicyTestSchema = z.strictObject({
  from: z.string().min(1).describe('Source. ingress: an IP address, or node:NAME|PEERID (each of its addresses is tried). egress: the sending node(s), node:NAME|PEERID or role:NAME (every one must give the expected verdict).'),
  to: z.string().min(1).describe('Destination. ingress: node:NAME|PEERID or role:NAME (every node holding the role must give the expected verdict). egress: an IP address, or node:NAME|PEERID (each of its addresses is tried).'),
  proto: z.enum(PROTOS as [Proto, ...Proto[]], { error: (i) => `${JSON.stringify(i.input)} is not tcp, udp or icmp` }).default('tcp').describe('Protocol of the connection.'),
  port: z.int().min(1).max(65535).optional().describe('Destination port (required for tcp and udp, absent for icmp).'),
  expect: z.enum(['allow', 'drop'], { error: (i) => `${JSON.stringify(i.input)} is not allow or drop` }).describe('The verdict the compiled ruleset must give.'),
  direction: z.enum(DIRECTIONS, { error: (i) => `${JSON.stringify(i.input)} is not ingress or egress` }).default('ingress')
    .describe('ingress: a new connection arriving at the `to` nodes. egress: a new connection the `from` nodes open to `to` (decided by egress rules under settings.egress: deny).'),
});

export const PolicyTestsSchema = z.array(PolicyTestSchema).max(MAX_TESTS, `more than ${MAX_TESTS} tests`).default([])
  .describe('Authoring-only assertions checked by `picket policy check` and `policy sign` (never part of the signed policy).');

export interface TestProblem {
  path: Path;
  message: string;
}

export interface TestOptions {
  /** Unix ms: exceptions that expired by now are left out, as the agents would. */
  now: number;
  /** The agents' mesh port(s) (default 7946): open to mesh peers, as enforcement does. */
  meshPorts?: number[];
  /** Failsafe SSH sources, as the agents' enforcement.failsafe.sshFrom (default none). */
  sshFrom?: string[];
}

export interface TestsResult {
  total: number;
  passed: number;
  /** One entry per failing or unusable test (a test fails once, at its first wrong verdict). */
  problems: TestProblem[];
}

/** Runs every test; never throws on what a test says (each problem is one line). */
export function runPolicyTests(policy: Policy, tests: readonly PolicyTest[], opts: TestOptions): TestsResult {
  const compiled = new Map<string, NodeRuleset | string>();
  const rulesetOf = (n: PolicyNode): NodeRuleset | string => {
    let rs = compiled.get(n.peerId);
    if (rs === undefined) {
      try {
        rs = compile(policy, n.peerId, { now: opts.now, meshPorts: opts.meshPorts ?? [DEFAULT_MESH_PORT], ...(opts.sshFrom ? { sshFrom: opts.sshFrom } : {}) });
      } catch (e) {
        rs = `node ${n.name} does not compile: ${(e as Error).message}`;
      }
      compiled.set(n.peerId, rs);
    }
    return rs;
  };
  const problems: TestProblem[] = [];
  const probes = tests.reduce((n, t) => {
    const [a, b] = t.direction === 'egress' ? [t.to, t.from] : [t.from, t.to];
    const addrs = addressesOf(policy, a), nodes = nodesOf(policy, b);
    return n + (typeof addrs === 'string' ? 0 : addrs.length) * (typeof nodes === 'string' ? 0 : nodes.length);
  }, 0);
  if (probes > MAX_PROBES) {
    return { total: tests.length, passed: 0, problems: [{ path: ['tests'], message: `the tests probe ${probes.toLocaleString('en-US')} (source address, node) pairs (limit ${MAX_PROBES.toLocaleString('en-US')}): test roles with fewer nodes, or from IPs` }] };
  }
  tests.forEach((t, i) => {
    const problem = evaluateOne(policy, t, rulesetOf);
    if (problem) problems.push({ path: ['tests', i, ...problem.path], message: problem.message });
  });
  return { total: tests.length, passed: tests.length - problems.length, problems };
}

function evaluateOne(policy: Policy, t: PolicyTest, rulesetOf: (n: PolicyNode) => NodeRuleset | string): TestProblem | undefined {
  // Ingress compiles the receivers (`to`) and probes from the addresses of `from`; egress
  // compiles the senders (`from`) and probes toward the addresses of `to`.
  const egress = t.direction === 'egress';
  const [nodeField, addrField] = egress ? ['from', 'to'] as const : ['to', 'from'] as const;
  const addrs = addressesOf(policy, t[addrField]);
  if (typeof addrs === 'string') return { path: [addrField], message: addrs };
  const nodes = nodesOf(policy, t[nodeField]);
  if (typeof nodes === 'string') return { path: [nodeField], message: nodes };
  if (t.proto === 'icmp' && t.port !== undefined) return { path: ['port'], message: 'icmp has no ports' };
  if (t.proto !== 'icmp' && t.port === undefined) return { path: ['port'], message: `${t.proto} needs a port` };
  const what = `${t.proto}${t.port !== undefined ? `/${t.port}` : ''}`;
  const port = t.port !== undefined ? { port: t.port } : {};
  for (const node of nodes) {
    const rs = rulesetOf(node);
    if (typeof rs === 'string') return { path: [], message: rs };
    for (const addr of addrs) {
      const v: Verdict = egress ? explain(rs, { direction: 'egress', to: addr, proto: t.proto, ...port }) : explain(rs, { from: addr, proto: t.proto, ...port });
      // A would-drop (monitor mode) is what the policy means to drop: tests check the policy
      // an operator will switch to enforce, not the trial.
      const got = v.action === 'ALLOW' && v.reason !== 'would-drop' ? 'allow' : 'drop';
      if (got !== t.expect) {
        const flow = egress ? `node ${node.name} → ${addr}` : `${addr} → node ${node.name}`;
        return { path: [], message: `expected ${t.expect}, got ${describeVerdict(v)}: ${flow} ${what}` };
      }
    }
  }
  return undefined;
}

function addressesOf(policy: Policy, from: string): string[] | string {
  if (from.startsWith('node:')) {
    const n = findNode(policy, from.slice(5));
    if (!n) return `node ${shownText(from.slice(5))} is not in nodes`;
    if (n.addresses.length === 0) return `node ${n.name} has no addresses to test from`;
    return n.addresses;
  }
  if (!parseIp(from)) return `${shownText(from)} is not an IP address or node:NAME`;
  return [from];
}

function nodesOf(policy: Policy, to: string): PolicyNode[] | string {
  if (to.startsWith('node:')) {
    const n = findNode(policy, to.slice(5));
    return n ? [n] : `node ${shownText(to.slice(5))} is not in nodes`;
  }
  if (to.startsWith('role:')) {
    const role = to.slice(5);
    const nodes = policy.nodes.filter((n) => n.roles.includes(role));
    return nodes.length ? nodes : `role ${shownText(role)} is not held by any node`;
  }
  return `${shownText(to)} is not node:NAME or role:NAME`;
}
