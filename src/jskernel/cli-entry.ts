/**
 * A stand-alone entry for the JavaScript kernel: `node cli-entry.js [kernel] -f <connection_file>`.
 * (The gateway's own executable reaches runKernel through its `kernel` subcommand.)
 */
import { connectionFileArg, runKernel } from './main.ts';

const file = connectionFileArg(process.argv.slice(2));
if (!file) {
  process.stderr.write('usage: cli-entry [kernel] -f <connection_file>\n');
  process.exit(2);
}
runKernel(file).catch((error: unknown) => {
  process.stderr.write(`kernelgateway kernel: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
