/** `picket policy sign|verify|show|diff|render|explain`: the offline policy workflow. */
import { Option, type Command } from 'commander';
import { InputError, UsageError } from '../errors.js';
import { systemClock } from '../runtime/clock.js';
import { compile, DEFAULT_MESH_PORT, exemptFromRevocation, revokedAddresses, rulesetHash, type NodeRuleset } from '../policy/compile.js';
import { diffPolicies, formatDiff } from '../policy/diff.js';
import { describeVerdict, explain, verdictJson } from '../policy/explain.js';
import { formatPrefix, parseIp, parsePrefix } from '../policy/ip.js';
import { encodePolicy, findNode, type Policy } from '../policy/model.js';
import { renderIptables, renderIptablesDropChains } from '../enforce/render-iptables.js';
import { renderNft } from '../enforce/render-nft.js';
import { digestOf, envelopeToText, PAYLOAD_TYPE, type Envelope } from '../trust/envelope.js';
import { loadEnvelope, loadPolicyUnverified, loadRootChain } from '../trust/files.js';
import { countSignatures, describeKey, validSigners } from '../trust/root.js';
import { addSignaturesWith, signEnvelopeWith } from '../trust/signer.js';
import { addSignerOptions, loadSigners, requireSomeSigner, type SigningOpts } from './signing.js';
import { verifyPolicy } from '../trust/verify.js';
import { printJson } from './print.js';
import { readText, writeAtomic } from '../runtime/files.js';
import { collect, intOption } from './options.js';
import { call, CONFIG_HELP, resolveSocket, SOCKET_HELP } from './client.js';
import { escapeText } from '../wire/text.js';

const iso = (ms: number) => new Date(ms).toISOString();

function warn(line: string): void {
  process.stderr.write(`warning: ${line}\n`);
}

interface RenderOpts {
  node: string;
  meshPort?: number[];
  sshFrom?: string[];
}

function compileFor(policy: Policy, opts: RenderOpts): NodeRuleset {
  if (!findNode(policy, opts.node)) throw new InputError(`node ${opts.node} is not in policy v${policy.version} (nodes: ${policy.nodes.map((n) => n.name).slice(0, 10).join(', ')})`);
  try {
    return compile(policy, opts.node, { now: systemClock.now(), meshPorts: opts.meshPort ?? [DEFAULT_MESH_PORT], ...(opts.sshFrom ? { sshFrom: opts.sshFrom } : {}) });
  } catch (e) {
    throw new InputError((e as Error).message);
  }
}

/** The authoring format (YAML and zod) is loaded only by the commands that read or print it. */
const authoring = () => import('../policy/authoring.js');

async function showPolicy(policy: Policy, envelope: Envelope, digest: string, json: boolean | undefined): Promise<void> {
  const { policyToAuthoring } = await authoring();
  if (json) {
    printJson({ ...policyToAuthoring(policy), digest, signatures: envelope.signatures.map((s) => s.keyId) });
    return;
  }
  const head = [
    `# policy v${policy.version} for mesh ${policy.meshId}`,
    `# issued ${iso(policy.issuedAt)}, expires ${iso(policy.expires)}`,
    `# digest ${digest}`,
    `# signed by ${envelope.signatures.map((s) => s.keyId.slice(0, 16)).join(', ') || 'nobody'}`,
  ];
  // Through authoring.ts, which imports yaml statically: the bundle gives a CommonJS package
  // imported with import() only a default export.
  process.stdout.write(head.join('\n') + '\n' + (await authoring()).authoringText(policy));
}

const meshPortOption = () =>
  new Option('--mesh-port <port>', `the agents' mesh listen port, repeatable (default: ${DEFAULT_MESH_PORT})`)
    .argParser((v: string, prev: number[] | undefined) => [...(prev ?? []), intOption(1, 65535)(v)]);

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('sign, verify and read fleet policies (offline)');

  const sign = policy
    .command('sign')
    .description('validate a policy YAML and sign it (or co-sign an existing signed policy)')
    .argument('<file>', 'policy YAML, or a .signed envelope to add signatures to')
    .requiredOption('--root <file>', 'the trusted root (repeat: pinned root, then rotations)', collect)
    .option('--key <file>', 'policy signing key, plain or encrypted (repeat for several)', collect)
    .requiredOption('--out <file>', 'where to write the signed policy (JSON envelope)')
    .option('--previous <file>', 'the signed policy this one replaces: say which removed nodes stay reachable')
    .option('--ssh-from <cidr>', 'failsafe SSH source of the agents (repeat), as enforcement.failsafe.sshFrom; used by --previous and the tests block', collect)
    .addOption(meshPortOption())
    .option('--json', 'print the result as JSON');
  addSignerOptions(sign)
    .action(async (file: string, opts: SigningOpts & { root: string[]; out: string; previous?: string; sshFrom?: string[]; meshPort?: number[]; json?: boolean }) => {
      requireSomeSigner(opts);
      const [{ formatLocated }, { checkPolicyText }] = await Promise.all([authoring(), import('../policy/check.js')]);
      const now = systemClock.now();
      const { trusted } = loadRootChain(opts.root);
      const keys = await loadSigners(opts);
      const policyRole = trusted.root.roles.policy;
      for (const k of keys) {
        if (!policyRole.keyIds.includes(k.keyId)) throw new InputError(`${k.source}: key ${k.keyId.slice(0, 16)}… is not a policy key of root v${trusted.root.version}`);
      }
      const text = readText(file, 'policy file');
      let env: Envelope;
      let warnings: string[] = [];
      if (text.trimStart().startsWith('{')) {
        const existing = loadEnvelope(file);
        if (existing.payloadType !== PAYLOAD_TYPE.policy) throw new InputError(`${file}: not a signed policy`);
        env = await addSignaturesWith(existing, keys);
      } else {
        // The keyless check (`policy check`): schema, model, expiry, budget and the tests block.
        const report = checkPolicyText(text, { now, ...(opts.sshFrom ? { sshFrom: opts.sshFrom } : {}), ...(opts.meshPort ? { meshPorts: opts.meshPort } : {}) });
        if (report.errors.length || !report.policy) throw new InputError(report.errors.map((e) => escapeText(formatLocated(file, e))).join('\n'));
        warnings = report.warnings.map((w) => escapeText(formatLocated(file, w)));
        env = await signEnvelopeWith(PAYLOAD_TYPE.policy, encodePolicy(report.policy), keys);
        if (opts.previous) warnings.push(...revocationWarnings(loadPolicyUnverified(opts.previous).policy, report.policy, opts.sshFrom ?? []));
      }
      const verdict = verifyPolicy(env, { root: trusted }, now);
      const count = countSignatures(env, policyRole, trusted.root.keys, { exhaustive: true });
      if (verdict.outcome !== 'accepted' && verdict.outcome !== 'below-threshold') {
        throw new InputError(`${file}: ${verdict.outcome}: ${verdict.reason}`);
      }
      writeAtomic(opts.out, envelopeToText(env));
      for (const w of warnings) warn(w);
      const complete = count.valid >= count.threshold;
      if (!complete) warn(`${count.valid} of ${count.threshold} required signatures: co-sign with \`picket policy sign ${opts.out} --root … --key OTHER.key --out ${opts.out}\``);
      if (opts.json) {
        printJson({ out: opts.out, digest: digestOf(env), signatures: count.valid, threshold: count.threshold, complete, warnings });
      } else {
        process.stdout.write(`signed ${opts.out}: ${count.valid} of ${count.threshold} signatures, digest ${digestOf(env)}\n`);
      }
    });

  policy
    .command('check')
    .description('check a policy YAML without any key or root: schema, model checks, budget and its tests block (exit 0 clean, 1 any problem)')
    .argument('<file>', 'policy YAML')
    .addOption(meshPortOption())
    .option('--ssh-from <cidr>', 'failsafe SSH source of the agents (repeat), as enforcement.failsafe.sshFrom: tests see it open', collect)
    .option('--json', 'print the problems as JSON')
    .action(async (file: string, opts: { meshPort?: number[]; sshFrom?: string[]; json?: boolean }) => {
      const [{ formatLocated }, { checkPolicyText }] = await Promise.all([authoring(), import('../policy/check.js')]);
      const text = readText(file, 'policy file');
      if (text.trimStart().startsWith('{') && text.includes('"payloadType"')) throw new InputError(`${file}: a signed policy, not a policy YAML: check the YAML it was signed from (\`picket policy verify\` checks a signed file)`);
      const report = checkPolicyText(text, { now: systemClock.now(), ...(opts.sshFrom ? { sshFrom: opts.sshFrom } : {}), ...(opts.meshPort ? { meshPorts: opts.meshPort } : {}) });
      const ok = report.errors.length === 0;
      if (opts.json) {
        const item = (severity: 'error' | 'warning') => (l: (typeof report.errors)[number]) => ({ file, line: l.line ?? null, path: l.path, severity, message: l.message });
        printJson({ ok, file, ...(report.policy ? { version: report.policy.version } : {}), tests: report.tests, problems: [...report.errors.map(item('error')), ...report.warnings.map(item('warning'))] });
      } else {
        // One line per problem, whatever the file holds: in CI the file comes from a pull request,
        // and a key with a newline or an ESC must not forge another line (or a CI command).
        for (const e of report.errors) process.stdout.write(`${escapeText(formatLocated(file, e))}\n`);
        for (const w of report.warnings) process.stdout.write(`warning: ${escapeText(formatLocated(file, w))}\n`);
        const t = report.tests;
        process.stderr.write(ok
          ? `ok: ${escapeText(file)}: policy v${report.policy?.version}, ${t.passed} of ${t.total} tests pass${report.warnings.length ? `, ${report.warnings.length} warning${report.warnings.length === 1 ? '' : 's'}` : ''}\n`
          : `failed: ${escapeText(file)}: ${report.errors.length} problem${report.errors.length === 1 ? '' : 's'}${report.policy ? `, ${t.passed} of ${t.total} tests pass` : ''}\n`);
      }
      if (!ok) process.exitCode = 1;
    });

  policy
    .command('history')
    .description('list the policy versions the running agent accepted, newest first')
    .option('--socket <path>', SOCKET_HELP)
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: { socket?: string; config?: string; json?: boolean }) => {
      const r = await call(await resolveSocket(opts), 'GET', '/v1/history');
      if (r.status !== 200) throw new InputError(`agent: ${(r.body as { error?: string }).error ?? `status ${r.status}`}`);
      const { policies } = r.body as { policies: HistoryJson[] };
      if (opts.json) return printJson(r.body);
      process.stdout.write(formatHistory(policies));
    });

  policy
    .command('verify')
    .description('verify a signed policy against the root of trust (exit 0 valid, 1 invalid)')
    .argument('<file>', 'signed policy')
    .requiredOption('--root <file>', 'the trusted root (repeat: pinned root, then rotations)', collect)
    .option('--mesh <id>', 'also require this mesh id')
    .option('--json', 'print the result as JSON')
    .action((file: string, opts: { root: string[]; mesh?: string; json?: boolean }) => {
      const now = systemClock.now();
      const { trusted } = loadRootChain(opts.root);
      const env = loadEnvelope(file);
      const v = verifyPolicy(env, { root: trusted, ...(opts.mesh ? { meshId: opts.mesh } : {}) }, now);
      // Who signed, by label where the root gives one: "is this really alice's signature?"
      // is the question a verifier asks after "is it valid?".
      const signers = validSigners(env, trusted.root.roles.policy, trusted.root.keys);
      const signerJson = signers.map((k) => ({ keyId: k.keyId, ...(k.label ? { label: k.label } : {}) }));
      if (v.outcome === 'accepted') {
        const p = v.policy;
        if (opts.json) printJson({ valid: true, outcome: v.outcome, meshId: p.meshId, version: p.version, digest: v.digest, expires: iso(p.expires), rootVersion: trusted.root.version, signers: signerJson });
        else process.stdout.write(`valid: policy v${p.version} for mesh ${p.meshId}, expires ${iso(p.expires)}, digest ${v.digest}\nsigned by ${signers.map(describeKey).join(', ')}\n`);
        return;
      }
      if (opts.json) printJson({ valid: false, outcome: v.outcome, reason: v.reason, ...(v.version !== undefined ? { version: v.version } : {}), ...(v.digest ? { digest: v.digest } : {}), signers: signerJson });
      else process.stderr.write(`invalid: ${v.outcome}: ${v.reason}\n`);
      process.exitCode = 1;
    });

  policy
    .command('show')
    .description('print a signed policy in its authoring form (signatures are not checked; use verify)')
    .argument('<file>', 'signed policy')
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { policy: p, envelope, digest } = loadPolicyUnverified(file);
      await showPolicy(p, envelope, digest, opts.json);
    });

  policy
    .command('diff')
    .description('show nodes, rules and exceptions added, removed or changed between two policies')
    .argument('<old>', 'older signed policy')
    .argument('<new>', 'newer signed policy')
    .option('--json', 'print as JSON')
    .action((a: string, b: string, opts: { json?: boolean }) => {
      const d = diffPolicies(loadPolicyUnverified(a).policy, loadPolicyUnverified(b).policy);
      if (opts.json) printJson(d);
      else process.stdout.write(formatDiff(d));
    });

  policy
    .command('render')
    .description('print the exact ruleset one node would enforce')
    .argument('<file>', 'signed policy')
    .requiredOption('--node <name|peerId>', 'the node')
    .addOption(new Option('--backend <backend>', 'ruleset syntax').choices(['nft', 'iptables']).default('nft'))
    .addOption(meshPortOption())
    .option('--ssh-from <cidr>', 'failsafe SSH source (repeat), as enforcement.failsafe.sshFrom', collect)
    .option('--json', 'print the compiled ruleset as JSON')
    .action((file: string, opts: RenderOpts & { backend: 'nft' | 'iptables'; json?: boolean }) => {
      const { policy: p } = loadPolicyUnverified(file);
      const rs = compileFor(p, opts);
      if (opts.json) {
        printJson({ hash: rulesetHash(rs), ...rs, sets: rs.sets.map(setJson), blocked: setJson(rs.blocked) });
      } else if (opts.backend === 'iptables') {
        const drops = renderIptablesDropChains(rs);
        process.stdout.write(`# drop chains, one per reason (iptables-restore --noflush and ip6tables-restore --noflush; only when they change)\n${drops}# iptables-restore --noflush\n${renderIptables(rs, 4)}# ip6tables-restore --noflush\n${renderIptables(rs, 6)}`);
      } else {
        process.stdout.write(renderNft(rs));
      }
    });

  policy
    .command('explain')
    .description('say whether a node accepts a new connection (--from) or may open one (--to), and which rule decides')
    .argument('<file>', 'signed policy')
    .requiredOption('--node <name|peerId>', 'the receiving node (with --to: the sending node)')
    .option('--from <ip>', 'source address of an inbound connection')
    .option('--to <ip>', 'destination address of an outbound connection (egress)')
    .option('--port <n>', 'destination port', intOption(1, 65535))
    .addOption(new Option('--proto <proto>', 'protocol').choices(['tcp', 'udp', 'icmp']).default('tcp'))
    .addOption(meshPortOption())
    .option('--ssh-from <cidr>', 'failsafe SSH source (repeat)', collect)
    .option('--json', 'print as JSON')
    .action((file: string, opts: RenderOpts & { from?: string; to?: string; port?: number; proto: 'tcp' | 'udp' | 'icmp'; json?: boolean }) => {
      if ((opts.from === undefined) === (opts.to === undefined)) throw new UsageError('give exactly one of --from (inbound) or --to (outbound)');
      const addr = opts.from ?? opts.to!;
      if (!parseIp(addr)) throw new InputError(`${opts.from !== undefined ? '--from' : '--to'} ${addr} is not an IP address`);
      if (opts.proto !== 'icmp' && opts.port === undefined) throw new InputError(`--port is required for ${opts.proto}`);
      const { policy: p } = loadPolicyUnverified(file);
      const rs = compileFor(p, opts);
      const port = opts.port !== undefined ? { port: opts.port } : {};
      const v = opts.to !== undefined ? explain(rs, { direction: 'egress', to: opts.to, proto: opts.proto, ...port }) : explain(rs, { from: addr, proto: opts.proto, ...port });
      if (opts.json) {
        printJson({ ...verdictJson(v), node: rs.node?.name, version: p.version });
      } else {
        process.stdout.write(`${describeVerdict(v)}\n`);
      }
    });
}

/**
 * Agents block the addresses of removed nodes before anything else, failsafe prefixes
 * included; only an address the operator configured as an exact failsafe host stays open.
 * The signer is told when that happens, since the agent cannot tell the fleet's admins.
 */
function revocationWarnings(previous: Policy, next: Policy, sshFrom: string[]): string[] {
  let exempt: Set<string>;
  try {
    exempt = new Set(exemptFromRevocation(revokedAddresses(previous, next), sshFrom));
  } catch (e) {
    throw new InputError(`--ssh-from: ${(e as Error).message}`);
  }
  const kept = new Set(next.nodes.map((n) => n.peerId));
  return previous.nodes.filter((n) => !kept.has(n.peerId)).flatMap((n) => n.addresses
    .filter((a) => { const pr = parsePrefix(a); return pr.ok && exempt.has(formatPrefix(pr.prefix)); })
    .map((a) => `node ${n.name} is removed but its address ${a} is a failsafe host (--ssh-from): agents keep SSH open to it; remove it from enforcement.failsafe.sshFrom to cut it off`));
}

function setJson(s: NodeRuleset['blocked']) {
  return { name: s.name, label: s.label, elements: [...s.v4, ...s.v6].map(formatPrefix) };
}

interface HistoryJson {
  version: number;
  digest: string;
  signers: string[];
  acceptedAt: string;
  source: string;
  peer?: string;
}

/** One row per accept; every field came from the agent's store and is escaped before printing. */
export function formatHistory(rows: HistoryJson[]): string {
  const e = escapeText;
  if (rows.length === 0) return 'no policy accepted yet (the baseline is in force)\n';
  const head = `${'VERSION'.padEnd(8)} ${'DIGEST'.padEnd(14)} ${'ACCEPTED AT'.padEnd(24)} ${'SOURCE'.padEnd(8)} SIGNERS`;
  const lines = rows.map((r) => [
    `v${r.version}`.padEnd(8),
    e(String(r.digest).slice(0, 12)).padEnd(14),
    e(r.acceptedAt).padEnd(24),
    e(r.source).padEnd(8),
    `${r.signers.map((k) => e(String(k).slice(0, 16))).join(', ') || '-'}${r.peer ? `  (from ${e(r.peer)})` : ''}`,
  ].join(' '));
  return `${head}\n${lines.join('\n')}\n`;
}
