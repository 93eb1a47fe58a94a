/**
 * A WebSocket message as a list of chunks, written one after the other behind one frame header
 * (frame-writer.ts). The big parts of a kernel message (its content, its buffers) go out as the very
 * Buffers ZeroMQ delivered instead of being copied into one Buffer (a 50 MB output was copied once
 * more per protocol); runs of small pieces are copied together, so a small message is one write.
 */

/** A piece at least this long stays a chunk of its own: copying it would cost more than a write. */
export const OWN_FRAGMENT_BYTES = 16 * 1024;

/** The pieces of one message, with the small ones joined. */
export function gather(pieces: readonly Buffer[]): Buffer[] {
  const chunks: Buffer[] = [];
  let run: Buffer[] = [];
  let runBytes = 0;
  const endRun = () => {
    if (run.length > 0) chunks.push(run.length === 1 ? run[0] : Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const piece of pieces) {
    if (piece.length >= OWN_FRAGMENT_BYTES) {
      endRun();
      chunks.push(piece);
    } else if (piece.length > 0) {
      run.push(piece);
      runBytes += piece.length;
    }
  }
  endRun();
  return chunks.length > 0 ? chunks : [Buffer.alloc(0)];
}
