/**
 * A kernel's stdout and stderr, wherever it runs: each line goes to the log (escaped, in pieces when
 * very long, collapsed by the logger when it repeats), and the last few kilobytes are kept to
 * explain a failed start.
 */
import type { Logger } from '../../log.ts';
import { printableBytes } from '../../log.ts';

const OUTPUT_TAIL_BYTES = 4096;
/** A kernel line longer than this is logged in pieces. */
const MAX_LINE_BYTES = 8192;

export type OutputName = 'stdout' | 'stderr';

export class KernelOutput {
  #tail = '';
  readonly #partial: Record<OutputName, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };

  constructor(
    private readonly kernelId: string,
    private readonly log: Logger,
  ) {}

  /** The last lines the kernel printed. */
  get tail(): string {
    return this.#tail;
  }

  /** Output of a new process follows: forget the last one's. */
  reset(): void {
    this.#tail = '';
  }

  push(name: OutputName, chunk: Buffer): void {
    this.#tail = (this.#tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    let data = this.#partial[name].length > 0 ? Buffer.concat([this.#partial[name], chunk]) : chunk;
    for (let at = data.indexOf(0x0a); at >= 0; at = data.indexOf(0x0a)) {
      this.#emit(name, data.subarray(0, at));
      data = data.subarray(at + 1);
    }
    while (data.length > MAX_LINE_BYTES) {
      this.#emit(name, data.subarray(0, MAX_LINE_BYTES));
      data = data.subarray(MAX_LINE_BYTES);
    }
    this.#partial[name] = Buffer.from(data);
  }

  /** The stream ended: its unfinished last line goes out too. */
  end(name: OutputName): void {
    this.#emit(name, this.#partial[name]);
    this.#partial[name] = Buffer.alloc(0);
  }

  #emit(name: OutputName, line: Buffer): void {
    if (line.length > 0) this.log.info(`kernel ${this.kernelId} ${name}: ${printableBytes(line)}`);
  }
}
