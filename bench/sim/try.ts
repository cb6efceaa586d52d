import '../../src/runtime/polyfill.js';
import { runSim } from './world.js';
import { CurrentStatusPlane } from './status.js';
const t = performance.now(); const c = process.cpuUsage();
const r = await runSim({ nodes: Number(process.argv[2] ?? 200), seed: 1, statusPlane: new CurrentStatusPlane(), statusSample: Number(process.argv[3] ?? 20), partitionMs: Number(process.argv[4] ?? 0), extraRules: Number(process.argv[5] ?? 0) });
const { curve: _c, ...rest } = r;
console.log(JSON.stringify(rest), performance.now() - t, process.cpuUsage(c));
