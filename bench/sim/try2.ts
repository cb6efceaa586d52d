import '../../src/runtime/polyfill.js';
import { runSim } from './world.js';
import { CurrentStatusPlane } from './status.js';
const c0 = process.cpuUsage();
const r = await runSim({ nodes: Number(process.argv[2] ?? 200), seed: 1, ...(Number(process.argv[3]) ? { statusPlane: new CurrentStatusPlane(), statusSample: Number(process.argv[3]) } : {}) });
console.log(r.timeTo100Ms, r.status?.bytesPerNodePerChange, process.cpuUsage(c0));
