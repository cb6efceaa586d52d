// Tiny TCP/UDP tool run inside test network namespaces (ip netns exec … node netprobe.mjs …).
//   serve PORT[,PORT…]          TCP echo servers on 0.0.0.0 (and ::), until killed
//   probe HOST PORT [TIMEOUT]   prints "open" or "closed"
//   hold HOST PORT              holds one connection, writes every 50 ms, prints "up" then "dead" when echoes stop
//   loop HOST PORT MS           connects repeatedly for MS ms (or until SIGTERM); prints JSON {ok, fail}
import net from 'node:net';

const [mode, a, b, c] = process.argv.slice(2);
const reasons = {};
const connect = (host, port, timeout) => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port) });
  const t = setTimeout(() => { s.destroy(); reasons.timeout = (reasons.timeout ?? 0) + 1; resolve(false); }, timeout);
  const t0 = Date.now();
  s.once('connect', () => {
    clearTimeout(t); s.destroy();
    // A SYN that was dropped is retransmitted after ~1 s: a connect that slow means a drop.
    if (Date.now() - t0 > 900) reasons.retransmitted = (reasons.retransmitted ?? 0) + 1;
    resolve(true);
  });
  s.once('error', (e) => { clearTimeout(t); reasons[e.code] = (reasons[e.code] ?? 0) + 1; resolve(false); });
});

if (mode === 'serve') {
  for (const p of a.split(',')) {
    net.createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => {})).listen(Number(p), '::');
  }
  console.log('serving');
} else if (mode === 'probe') {
  console.log((await connect(a, b, Number(c ?? 500))) ? 'open' : 'closed');
  process.exit(0);
} else if (mode === 'hold') {
  const s = net.connect({ host: a, port: Number(b) });
  let last = Date.now();
  let up = false;
  s.on('data', () => { last = Date.now(); if (!up) { up = true; console.log('up'); } });
  s.on('error', () => {});
  setInterval(() => {
    s.write('x');
    if (up && Date.now() - last > 1000) { console.log('dead'); process.exit(0); }
  }, 50);
} else if (mode === 'loop') {
  // Connects back to back until MS ms pass or SIGTERM; prints "started" first, then {ok, fail}.
  const end = Date.now() + Number(c);
  let ok = 0, fail = 0, stop = false;
  process.on('SIGTERM', () => { stop = true; });
  console.log('started');
  while (!stop && Date.now() < end) {
    if (await connect(a, b, 3000)) ok++;
    else fail++;
  }
  console.log(JSON.stringify({ ok, fail, reasons }));
  process.exit(0);
}
