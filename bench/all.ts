/**
 * `npm run bench`: every benchmark in turn, each in its own process (its own gateway, its own
 * figures), with the same arguments (e.g. --quick). Exit code 1 when any of them failed.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const benchmarks = ['run.js', 'load.js', 'notebook-http.js', 'slurm.js'];
let failed = false;
for (const name of benchmarks) {
  const script = fileURLToPath(new URL(name, import.meta.url));
  const result = spawnSync(process.execPath, [script, ...args], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed = true;
    console.error(`[bench] ${name} failed (exit ${result.status ?? result.signal})`);
  }
}
process.exit(failed ? 1 : 0);
