/**
 * Key custody (issue 15 item 6): encrypted admin keys, key labels carried into the root, and
 * external signers (`--signer CMD --signer-pub FILE`), through the real binary. The external
 * signer is a small script that signs with node:crypto, written into the test's temp dir.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, expectOneLineError, picketWith, tempDir, type Run } from '../helpers/cli.js';
import { keyIdOf } from '../../src/trust/keys.js';
import { decodeRoot, encodeRoot, type RootDoc } from '../../src/trust/root.js';
import { envelopeToText, pae, parseEnvelopeJson, PAYLOAD_TYPE, signEnvelope } from '../../src/trust/envelope.js';
import { parseSigningKey } from '../../src/trust/keys.js';
import { parseSignerOutput } from '../../src/trust/signer.js';

const t = tempDir('picket-keys-');
const p = t.path;
const PASS = 'correct horse battery staple';
/** No PICKET_PASSPHRASE leaks in from the environment the suite runs in. */
const run = (...args: string[]) => picketWith({ cwd: t.dir, env: { PICKET_PASSPHRASE: undefined } }, ...args);
const runEnv = (env: Record<string, string | undefined>, ...args: string[]) => picketWith({ cwd: t.dir, env: { PICKET_PASSPHRASE: undefined, ...env } }, ...args);
const ok = (r: Run) => expect(r.code, r.stderr + r.stdout).toBe(0);
const envelope = (f: string) => {
  const r = parseEnvelopeJson(readFileSync(p(f)));
  if (!r.ok) throw new Error(r.reason);
  return r.value;
};

/**
 * The external signer under test: reads stdin, signs it with a key file through node:crypto
 * and prints the signature the way MODE says; or misbehaves the way MODE says.
 * Usage: node signer.mjs MODE KEYFILE [RECORD]  (RECORD: where to copy the bytes it got).
 */
const SIGNER = `import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
const [mode, keyFile, record] = process.argv.slice(2);
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
let msg = Buffer.concat(chunks);
if (record) writeFileSync(record, msg);
if (mode === 'hang') { writeFileSync(keyFile, String(process.pid)); setInterval(() => {}, 1000); }
else if (mode === 'fail') process.exit(3);
else if (mode === 'garbage') process.stdout.write('certainly a signature\\n');
else {
  if (mode === 'other') msg = Buffer.concat([msg, Buffer.from('!')]);
  const sig = sign(null, msg, createPrivateKey(readFileSync(keyFile)));
  process.stdout.write(mode === 'hex' ? sig.toString('hex') + '\\n' : mode === 'base64' ? sig.toString('base64') + '\\n' : sig);
}
`;
const signer = (mode: string, key: string, record?: string) => `node signer.mjs ${mode} ${key}${record ? ` ${record}` : ''}`;

/** Runs a command on a pseudo-terminal, answering each prompt once it appears (so nothing is typed ahead into an echoing tty). */
const PTY = [
  "import os, pty, sys, json, select",
  "args = json.loads(sys.argv[1]); answers = json.loads(sys.argv[2])",
  "pid, fd = pty.fork()",
  "if pid == 0:",
  "    os.execvp(args[0], args)",
  "out = b''",
  "def read_until(marker, timeout=30):",
  "    global out",
  "    while marker.encode() not in out:",
  "        r, _, _ = select.select([fd], [], [], timeout)",
  "        if not r: raise SystemExit('timeout waiting for %r, got %r' % (marker, out))",
  "        try: chunk = os.read(fd, 1024)",
  "        except OSError: raise SystemExit('eof waiting for %r, got %r' % (marker, out))",
  "        if not chunk: raise SystemExit('eof')",
  "        out += chunk",
  "for prompt, answer in answers:",
  "    read_until(prompt)",
  "    os.write(fd, answer.encode() + b'\\r')",
  "while True:",
  "    try: chunk = os.read(fd, 1024)",
  "    except OSError: break",
  "    if not chunk: break",
  "    out += chunk",
  "_, status = os.waitpid(pid, 0)",
  "sys.stdout.write(json.dumps({'code': os.waitstatus_to_exitcode(status), 'out': out.decode('utf8', 'replace')}))",
].join('\n') + '\n';

const policyYaml = 'meshId: m\nversion: 1\nexpires: 2099-01-01\n';

beforeAll(() => {
  writeFileSync(p('signer.mjs'), SIGNER);
  writeFileSync(p('pass.txt'), `${PASS}\n`);
  writeFileSync(p('wrong.txt'), 'not the passphrase at all\n');
  writeFileSync(p('policy.yaml'), policyYaml);
  // Plain keys for the signer script (the "token" holds them), with labels.
  ok(run('keygen', '--out', 'hsm1.key', '--no-encrypt', '--label', 'hsm-1'));
  ok(run('keygen', '--out', 'hsm2.key', '--no-encrypt', '--label', 'hsm-2'));
  ok(run('keygen', '--out', 'other.key', '--no-encrypt'));
});
afterAll(() => t.cleanup());

describe('encrypted admin keys', () => {
  it('keygen encrypts with a passphrase file: a standard encrypted PKCS#8 PEM that OpenSSL-compatible readers open', () => {
    const r = run('keygen', '--out', 'enc.key', '--passphrase-file', 'pass.txt', '--label', 'alice@ops', '--json');
    ok(r);
    const out = JSON.parse(r.stdout) as { keyId: string; encrypted: boolean; label: string };
    expect(out).toMatchObject({ encrypted: true, label: 'alice@ops' });
    const text = readFileSync(p('enc.key'), 'utf8');
    expect(text).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    expect(text).not.toContain('-----BEGIN PRIVATE KEY-----');
    const key = createPrivateKey({ key: text, format: 'pem', passphrase: PASS });
    const raw = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
    expect(keyIdOf(raw)).toBe(out.keyId);
    expect(() => createPrivateKey({ key: text, format: 'pem', passphrase: 'nope' })).toThrow();
  });

  it('round trip: root create with a passphrase file, policy sign with PICKET_PASSPHRASE, verify', () => {
    ok(run('root', 'create', '--key', 'enc.key', '--passphrase-file', 'pass.txt', '--out', 'enc-root.json'));
    ok(runEnv({ PICKET_PASSPHRASE: PASS }, 'policy', 'sign', 'policy.yaml', '--root', 'enc-root.json', '--key', 'enc.key', '--out', 'enc.signed'));
    const v = run('policy', 'verify', 'enc.signed', '--root', 'enc-root.json', '--json');
    ok(v);
    expect(JSON.parse(v.stdout)).toMatchObject({ valid: true, signers: [{ label: 'alice@ops' }] });
  });

  it('keygen takes the passphrase from PICKET_PASSPHRASE too, and the key opens with it', () => {
    ok(runEnv({ PICKET_PASSPHRASE: PASS }, 'keygen', '--out', 'enc2.key'));
    expect(readFileSync(p('enc2.key'), 'utf8')).toContain('ENCRYPTED PRIVATE KEY');
    expect(parseSigningKey(readFileSync(p('enc2.key'), 'utf8'), 'enc2', PASS).keyId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects a wrong passphrase with one line, exit 1, and writes nothing', () => {
    const r = run('policy', 'sign', 'policy.yaml', '--root', 'enc-root.json', '--key', 'enc.key', '--passphrase-file', 'wrong.txt', '--out', 'wrong.signed');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/enc\.key: wrong passphrase/);
    expect(existsSync(p('wrong.signed'))).toBe(false);
    const e = runEnv({ PICKET_PASSPHRASE: 'also wrong, sadly' }, 'root', 'create', '--key', 'enc.key', '--out', 'wrong-root.json');
    expectOneLineError(e);
    expect(existsSync(p('wrong-root.json'))).toBe(false);
  });

  it('an encrypted key and no passphrase source (no terminal, no file, no variable): one line saying where a passphrase comes from', () => {
    const r = run('policy', 'sign', 'policy.yaml', '--root', 'enc-root.json', '--key', 'enc.key', '--out', 'nopass.signed');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/encrypted key and no passphrase \(--passphrase-file, PICKET_PASSPHRASE or a terminal\)/);
  });

  it('keygen --encrypt without a passphrase fails; a short passphrase is refused; --no-encrypt writes a plain key quietly', () => {
    expectOneLineError(run('keygen', '--out', 'x.key', '--encrypt'));
    expect(existsSync(p('x.key'))).toBe(false);
    writeFileSync(p('short.txt'), 'hunter2\n');
    const s = run('keygen', '--out', 'x.key', '--passphrase-file', 'short.txt');
    expectOneLineError(s);
    expect(s.stderr).toMatch(/at least 12/);
    expect(existsSync(p('x.key'))).toBe(false);
    const plain = run('keygen', '--out', 'plain.key', '--no-encrypt');
    ok(plain);
    expect(plain.stderr).toBe('');
    expect(readFileSync(p('plain.key'), 'utf8')).toContain('-----BEGIN PRIVATE KEY-----');
  });

  it('with no passphrase source and no flag, keygen still writes a plain key (scripts keep working) and warns', () => {
    const r = run('keygen', '--out', 'auto.key');
    ok(r);
    expect(r.stderr).toMatch(/^warning: auto\.key is not encrypted/);
    expect(readFileSync(p('auto.key'), 'utf8')).toContain('-----BEGIN PRIVATE KEY-----');
  });

  it('a --policy-key that is an encrypted private key asks for the .pub instead', () => {
    const r = run('root', 'create', '--key', 'plain.key', '--policy-key', 'enc.key', '--out', 'pk-root.json');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/give its public key instead/);
  });
});

describe('passphrase prompt on a terminal', () => {
  const onTty = (args: string[], answers: [string, string][]) => {
    const r = spawnSync('python3', [p('ptyrun.py'), JSON.stringify([process.execPath, BIN, ...args]), JSON.stringify(answers)], { cwd: t.dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, PICKET_PASSPHRASE: '' } });
    if (r.status !== 0) throw new Error(`pty helper: ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as { code: number; out: string };
  };
  it('keygen on a terminal asks twice without echo and encrypts; root create asks once', (ctx) => {
    if (spawnSync('python3', ['-c', 'import pty'], { encoding: 'utf8' }).status !== 0) {
      console.warn('skipping the terminal prompt test: python3 with the pty module is not installed');
      ctx.skip();
      return;
    }
    writeFileSync(p('ptyrun.py'), PTY);
    const secret = 'typed at the prompt 1';
    const k = onTty(['keygen', '--out', 'tty.key', '--label', 'tty'], [['passphrase for tty.key: ', secret], ['again: ', secret]]);
    expect(k.code, k.out).toBe(0);
    expect(k.out).not.toContain(secret);
    expect(readFileSync(p('tty.key'), 'utf8')).toContain('ENCRYPTED PRIVATE KEY');
    const c = onTty(['root', 'create', '--key', 'tty.key', '--out', 'tty-root.json'], [['passphrase for tty.key: ', secret]]);
    expect(c.code, c.out).toBe(0);
    expect(c.out).not.toContain(secret);
    const w = onTty(['root', 'create', '--key', 'tty.key', '--out', 'tty-root2.json'], [['passphrase for tty.key: ', 'not it at all']]);
    expect(w.code).toBe(1);
    expect(w.out).toMatch(/tty\.key: wrong passphrase/);
    const m = onTty(['keygen', '--out', 'tty2.key'], [['passphrase for tty2.key: ', secret], ['again: ', `${secret}x`]]);
    expect(m.code).toBe(1);
    expect(m.out).toMatch(/do not match/);
    expect(existsSync(p('tty2.key'))).toBe(false);
  });
});

describe('key labels', () => {
  it('carries keygen --label into the root: root show prints it, policy verify names the signer by it', () => {
    ok(run('keygen', '--out', 'bob.key', '--no-encrypt', '--label', 'bob@ops'));
    ok(run('keygen', '--out', 'carol.key', '--no-encrypt'));
    ok(run('root', 'create', '--key', 'bob.key', '--policy-key', 'bob.pub', '--policy-key', 'carol.pub', '--policy-threshold', '2', '--out', 'label-root.json'));
    const show = run('root', 'show', 'label-root.json');
    ok(show);
    expect(show.stdout).toMatch(/root, policy\s+bob@ops/);
    const json = JSON.parse(run('root', 'show', 'label-root.json', '--json').stdout) as { keys: { label?: string }[] };
    expect(json.keys.map((k) => k.label)).toEqual(['bob@ops', undefined]);
    ok(run('policy', 'sign', 'policy.yaml', '--root', 'label-root.json', '--key', 'bob.key', '--key', 'carol.key', '--out', 'label.signed'));
    const v = run('policy', 'verify', 'label.signed', '--root', 'label-root.json');
    ok(v);
    expect(v.stdout).toMatch(/^signed by bob@ops \([0-9a-f]{8}…\), [0-9a-f]{16}…$/m);
  });

  it('a root rotation keeps the labels the current root gave', () => {
    ok(run('root', 'rotate', '--root', 'label-root.json', '--key', 'bob.key', '--out', 'label-root2.json'));
    expect(run('root', 'show', 'label-root2.json').stdout).toMatch(/bob@ops/);
  });

  it('a root made from unlabelled keys encodes exactly as before labels existed (its digest does not change)', () => {
    // Bytes of this root as written by the code before labels (commit c2aae69).
    const before = '08031080b08fe6b2771a640a403334373530663938626435396663666339343664613435616161626539333362653135346134623530393465316334616266343238363635303566336339376512208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c1a640a403661333830336435663035393930326131633664616662633962613437323932313266376361616330383633346363336165373662323735323966303338323712208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39422440a403334373530663938626435396663666339343664613435616161626539333362653135346134623530393465316334616266343238363635303566336339376510012a440a40366133383033643566303539393032613163366461666263396261343732393231326637636161633038363334636333616537366232373532396630333832371001';
    const d = decodeRoot(Buffer.from(before, 'hex'));
    if (!d.ok) throw new Error(d.reason);
    expect(d.root.keys.every((k) => k.label === undefined)).toBe(true);
    expect(Buffer.from(encodeRoot(d.root)).toString('hex')).toBe(before);
    // And a label does change the bytes (the field is really carried).
    const labelled = { ...d.root, keys: d.root.keys.map((k) => ({ ...k, label: 'ops' })) };
    expect(Buffer.from(encodeRoot(labelled)).toString('hex')).not.toBe(before);
  });

  it('refuses a --label holding terminal escapes, and does not echo the escape raw', () => {
    const r = run('keygen', '--out', 'esc.key', '--no-encrypt', '--label', '\x1b[2J\x1b[31mroot@ops');
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).toContain('\\x1b');
    expect(existsSync(p('esc.key'))).toBe(false);
  });

  it('does not echo a flag value\'s terminal escapes raw (any command: commander quotes bad arguments)', () => {
    const r = run('root', 'create', '--key', 'x.key', '--out', 'x.json', '--threshold', '\x1b[2J1');
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).toContain('\\x1b[2J1');
  });

  it('refuses a key file whose label line was edited to hold escapes', () => {
    ok(run('keygen', '--out', 'edit.key', '--no-encrypt', '--label', 'eve'));
    writeFileSync(p('edit.key'), readFileSync(p('edit.key'), 'utf8').replace('picket-label: eve', 'picket-label: eve\x1b]0;pwned\x07'));
    const r = run('root', 'create', '--key', 'edit.key', '--out', 'edit-root.json');
    expectOneLineError(r);
    expect(r.stderr).not.toContain('\x1b');
    expect(existsSync(p('edit-root.json'))).toBe(false);
  });

  it('rejects a signed root carrying a label with terminal escapes or over 64 characters (root show and policy verify)', () => {
    const key = parseSigningKey(readFileSync(p('bob.key'), 'utf8'), 'bob');
    for (const [name, label] of [['esc', '\x1b[1;32mtrusted-admin\x1b[0m'], ['bidi', 'alice\u202e@ops'], ['long', 'a'.repeat(65)]] as const) {
      const doc: RootDoc = {
        version: 1, expires: Date.parse('2099-01-01'),
        keys: [{ keyId: key.keyId, publicKey: key.publicKey, label }],
        roles: { root: { keyIds: [key.keyId], threshold: 1 }, policy: { keyIds: [key.keyId], threshold: 1 } },
      };
      writeFileSync(p(`evil-${name}.json`), envelopeToText(signEnvelope(PAYLOAD_TYPE.root, encodeRoot(doc), [key])));
      for (const r of [run('root', 'show', `evil-${name}.json`), run('policy', 'verify', 'label.signed', '--root', `evil-${name}.json`)]) {
        expectOneLineError(r);
        expect(r.stderr).toMatch(/label/);
        expect(r.stdout + r.stderr).not.toMatch(/[\x1b\u202e]/);
      }
    }
  });
});

describe('external signer (--signer CMD --signer-pub FILE)', () => {
  it('signs a policy through the signer: it receives exactly PAE(payloadType, payload) and the result verifies (raw, hex and base64 output)', () => {
    ok(run('root', 'create', '--signer', signer('raw', 'hsm1.key', 'root-msg.bin'), '--signer-pub', 'hsm1.pub', '--out', 'ext-root.json'));
    const root = envelope('ext-root.json');
    expect(Buffer.from(readFileSync(p('root-msg.bin'))).equals(Buffer.from(pae(root.payloadType, root.payload)))).toBe(true);
    expect(run('root', 'show', 'ext-root.json').stdout).toMatch(/hsm-1/);
    for (const mode of ['raw', 'hex', 'base64']) {
      ok(run('policy', 'sign', 'policy.yaml', '--root', 'ext-root.json', '--signer', signer(mode, 'hsm1.key', 'msg.bin'), '--signer-pub', 'hsm1.pub', '--out', `ext-${mode}.signed`));
      const env = envelope(`ext-${mode}.signed`);
      expect(Buffer.from(readFileSync(p('msg.bin'))).equals(Buffer.from(pae(env.payloadType, env.payload)))).toBe(true);
      const v = run('policy', 'verify', `ext-${mode}.signed`, '--root', 'ext-root.json');
      ok(v);
      expect(v.stdout).toMatch(/signed by hsm-1/);
    }
  });

  it('takes the signer public key as hex, raw bytes or an ssh-ed25519 line (what ssh-add -L prints)', () => {
    const key = parseSigningKey(readFileSync(p('hsm1.key'), 'utf8'), 'hsm1');
    writeFileSync(p('hsm1.hex'), `${Buffer.from(key.publicKey).toString('hex')}\n`);
    const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), key.publicKey]);
    writeFileSync(p('hsm1.ssh'), `ssh-ed25519 ${blob.toString('base64')} card@yubikey\n`);
    writeFileSync(p('hsm1.raw'), key.publicKey);
    for (const pub of ['hsm1.hex', 'hsm1.ssh', 'hsm1.raw']) {
      ok(run('policy', 'sign', 'policy.yaml', '--root', 'ext-root.json', '--signer', signer('hex', 'hsm1.key'), '--signer-pub', pub, '--out', 'fmt.signed'));
      ok(run('policy', 'verify', 'fmt.signed', '--root', 'ext-root.json'));
    }
  });

  const misbehaving: [string, string, RegExp][] = [
    ['prints garbage', signer('garbage', 'hsm1.key'), /printed 22 bytes, not a 64-byte Ed25519 signature/],
    ['signs other bytes', signer('other', 'hsm1.key'), /does not verify against key .* nothing written/],
    ['signs with another key than --signer-pub names', signer('raw', 'other.key'), /does not verify against key/],
    ['exits non-zero', signer('fail', 'hsm1.key'), /exited with code 3/],
    ['prints nothing', 'true', /printed nothing/],
    ['is not a command', 'no-such-signer-command-here', /exited with code 127/],
  ];
  for (const [name, cmd, why] of misbehaving) {
    it(`rejects a signer that ${name}: one line, exit 1, nothing written`, () => {
      const r = run('policy', 'sign', 'policy.yaml', '--root', 'ext-root.json', '--signer', cmd, '--signer-pub', 'hsm1.pub', '--out', 'bad.signed');
      // The signer's own stderr (a shell's "not found") goes to the operator's terminal; picket's is the last line.
      const own = { ...r, stderr: r.stderr.trim().split('\n').at(-1)! + '\n' };
      expectOneLineError(own);
      expect(own.stderr).toMatch(why);
      expect(existsSync(p('bad.signed'))).toBe(false);
    });
  }

  it('kills a signer that hangs after --signer-timeout, with its process group, and writes nothing', async () => {
    // A pipeline: the hung process is the shell's child, not picket's, and `cat` holds the pipe.
    const r = run('root', 'create', '--signer', `${signer('hang', 'hang.pid')} | cat`, '--signer-pub', 'hsm1.pub', '--signer-timeout', '1', '--out', 'hang-root.json');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/no signature after 1 s \(killed/);
    expect(existsSync(p('hang-root.json'))).toBe(false);
    const pid = Number(readFileSync(p('hang.pid'), 'utf8'));
    // The hung process was killed (gone, or a zombie waiting for init to reap it).
    const alive = () => { try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; } };
    for (let i = 0; i < 100 && alive(); i++) await new Promise((res) => setTimeout(res, 50));
    expect(alive()).toBe(false);
  });

  it('a signer whose key is not a policy key of the root is refused before it runs', () => {
    const r = run('policy', 'sign', 'policy.yaml', '--root', 'ext-root.json', '--signer', signer('raw', 'other.key', 'never.bin'), '--signer-pub', 'other.pub', '--out', 'bad.signed');
    expectOneLineError(r);
    expect(r.stderr).toMatch(/is not a policy key of root v1/);
    expect(existsSync(p('never.bin'))).toBe(false);
  });

  it('--signer without its --signer-pub is a usage error', () => {
    expect(run('policy', 'sign', 'policy.yaml', '--root', 'ext-root.json', '--signer', signer('raw', 'hsm1.key'), '--out', 'bad.signed').code).toBe(2);
  });

  it('adds a signer signature to a multi-signed policy without touching the signatures already there', () => {
    ok(run('keygen', '--out', 'm1.key', '--passphrase-file', 'pass.txt', '--label', 'm1'));
    ok(run('keygen', '--out', 'm2.key', '--no-encrypt', '--label', 'm2'));
    ok(run('root', 'create', '--key', 'm1.key', '--passphrase-file', 'pass.txt', '--policy-key', 'm1.pub', '--policy-key', 'm2.pub', '--policy-key', 'hsm2.pub', '--policy-threshold', '3', '--out', 'multi-root.json'));
    const half = run('policy', 'sign', 'policy.yaml', '--root', 'multi-root.json', '--key', 'm1.key', '--key', 'm2.key', '--passphrase-file', 'pass.txt', '--out', 'multi.signed');
    ok(half);
    expect(half.stderr).toMatch(/2 of 3 required signatures/);
    const before = envelope('multi.signed');
    ok(run('policy', 'sign', 'multi.signed', '--root', 'multi-root.json', '--signer', signer('base64', 'hsm2.key'), '--signer-pub', 'hsm2.pub', '--out', 'multi.signed'));
    const after = envelope('multi.signed');
    expect(after.signatures.slice(0, 2)).toEqual(before.signatures);
    expect(after.signatures).toHaveLength(3);
    const v = run('policy', 'verify', 'multi.signed', '--root', 'multi-root.json');
    ok(v);
    expect(v.stdout).toMatch(/signed by m1 \(.*\), m2 \(.*\), hsm-2 \(/);
  });

  it('rotates the root to a signer-held key: --new-key names its public key, the signer signs', () => {
    ok(run('root', 'rotate', '--root', 'ext-root.json', '--signer', signer('raw', 'hsm1.key'), '--signer-pub', 'hsm1.pub',
      '--signer', signer('hex', 'hsm2.key'), '--signer-pub', 'hsm2.pub', '--new-key', 'hsm2.pub', '--out', 'ext-root2.json'));
    const show = run('root', 'show', 'ext-root2.json', '--root', 'ext-root.json');
    ok(show);
    expect(show.stdout).toMatch(/hsm-2/);
    expect(show.stdout).toMatch(/chain     ok/);
    const noSigner = run('root', 'rotate', '--root', 'ext-root.json', '--signer', signer('raw', 'hsm1.key'), '--signer-pub', 'hsm1.pub', '--new-key', 'm2.pub', '--out', 'ext-root3.json');
    expectOneLineError(noSigner);
    expect(noSigner.stderr).toMatch(/a public key: give its private key, or a --signer/);
  });
});

describe('recipes in docs/operations.md, run as written', () => {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');
  const recipe = (heading: string) => {
    const at = doc.indexOf(heading);
    expect(at, heading).toBeGreaterThan(0);
    return /`--signer '([^`]*)'`/.exec(doc.slice(at, at + 600))![1]!;
  };
  for (const heading of ['**A key OpenSSL reads**', '**A node one-liner**']) {
    it(`the ${heading.replaceAll('*', '')} signer signs a policy that verifies`, () => {
      const r = runEnv({ KEY: 'hsm1.key' }, 'policy', 'sign', 'policy.yaml', '--root', 'ext-root.json', '--signer', recipe(heading), '--signer-pub', 'hsm1.pub', '--out', 'recipe.signed');
      ok(r);
      expect(run('policy', 'verify', 'recipe.signed', '--root', 'ext-root.json').stdout).toMatch(/signed by hsm-1/);
    });
  }
});

describe('signer output forms', () => {
  it('accepts exactly 64 raw bytes, 128 hex digits or 88 base64 characters, and nothing in between', () => {
    const sig = Buffer.alloc(64, 7);
    expect(parseSignerOutput(sig)).toEqual(new Uint8Array(sig));
    expect(parseSignerOutput(Buffer.from(`${sig.toString('hex')}\n`))).toEqual(new Uint8Array(sig));
    expect(parseSignerOutput(Buffer.from(`  ${sig.toString('base64')}\r\n`))).toEqual(new Uint8Array(sig));
    expect(parseSignerOutput(Buffer.concat([sig, Buffer.from('\n')]))).toMatch(/printed 65 bytes/);
    expect(parseSignerOutput(Buffer.alloc(63))).toMatch(/printed 63 bytes/);
    expect(parseSignerOutput(Buffer.from(sig.toString('hex').slice(2)))).toMatch(/not a 64-byte/);
    expect(parseSignerOutput(Buffer.from(Buffer.alloc(40).toString('base64')))).toMatch(/not a 64-byte/);
  });
});
