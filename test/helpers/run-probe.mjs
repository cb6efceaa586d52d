// Runs picket's peer probes from inside a test namespace: node run-probe.mjs '<targets JSON>'
import { runProbes } from '../../dist/audit/probe.js';

const targets = JSON.parse(process.argv[2]);
console.log(JSON.stringify(await runProbes(targets, 500)));
