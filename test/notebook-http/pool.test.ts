/**
 * The notebook-http kernel pool with fake kernels: start-up, strict rotation, one request per kernel,
 * the bounded FIFO queue, request timeouts (interrupt, then replacement), dead kernels replaced,
 * drain and close.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelPool, type PoolOptions, type PoolOutcome } from '../../src/notebook-http/pool.ts';
import type { PoolKernel } from '../../src/notebook-http/pool-kernel.ts';
import { eventually, FakeKernel, FakeKernelSource, memoryLogger, sleep } from './fake-kernels.ts';

function options(overrides: Partial<PoolOptions> = {}): PoolOptions {
  return {
    size: 1,
    maxQueued: 100,
    requestTimeoutMs: 0,
    interruptGraceMs: 200,
    log: memoryLogger(),
    replacementBackoffMs: { first: 10, max: 40 },
    ...overrides,
  };
}

/** A job running `code` that resolves with the kernel's id and its stdout. */
const runs = (code: string) => async (kernel: PoolKernel, signal: AbortSignal) => {
  const outputs = await kernel.execute(code, signal);
  const text = outputs.map((o) => (o.type === 'stream' ? o.text : o.type === 'error' ? `!${o.ename}` : '')).join('');
  return `${kernel.id}:${text}`;
};

const value = <T>(outcome: PoolOutcome<T>): T => {
  if (outcome.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(outcome)}`);
  return outcome.value;
};

test('start: every kernel is started before the pool exists; a failed start shuts the others down', async () => {
  const source = new FakeKernelSource();
  const pool = await KernelPool.start(source, options({ size: 3 }));
  assert.is(source.started.length, 3);
  assert.equal(pool.stats, { size: 3, idle: 3, busy: 0, recovering: 0, starting: 0, queued: 0 });
  await pool.close();
  assert.ok(source.started.every((k) => k.shutdowns === 1));

  const failing = new FakeKernelSource();
  failing.failNext = 1;
  try {
    await KernelPool.start(failing, options({ size: 3 }));
    assert.unreachable('start should fail');
  } catch (error) {
    assert.match((error as Error).message, 'setup cell 2 failed');
  }
  assert.is(failing.started.length, 2);
  assert.ok(failing.started.every((k) => k.shutdowns === 1), 'the kernels that did start are shut down');

  try {
    await KernelPool.start(new FakeKernelSource(), options({ size: 0 }));
    assert.unreachable('size 0 should be refused');
  } catch (error) {
    assert.instance(error, RangeError);
  }
});

test('strict rotation: sequential requests go round the kernels in order', async () => {
  const pool = await KernelPool.start(new FakeKernelSource(), options({ size: 3 }));
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push(value(await pool.run(runs('print x'))).split(':')[0]);
  assert.equal(ids, ['k1', 'k2', 'k3', 'k1', 'k2', 'k3', 'k1']);
  await pool.close();
});

test('per-kernel memory: a change made through one kernel is seen only when the rotation comes back to it', async () => {
  const pool = await KernelPool.start(new FakeKernelSource(), options({ size: 3 }));
  await pool.run(runs('set message hola'));
  const seen = [];
  for (let i = 0; i < 3; i++) seen.push(value(await pool.run(runs('get message'))));
  assert.equal(seen, ['k2:\n', 'k3:\n', 'k1:hola\n']);
  await pool.close();
});

test('one request per kernel; excess requests queue and start in arrival order', async () => {
  const source = new FakeKernelSource();
  const pool = await KernelPool.start(source, options({ size: 3 }));
  const order: number[] = [];
  const jobs = Array.from({ length: 7 }, (_, i) =>
    pool.run(async (kernel, signal) => {
      order.push(i);
      await kernel.execute('sleep 20', signal);
      return kernel.id;
    }),
  );
  assert.is(pool.stats.busy, 3);
  assert.is(pool.stats.queued, 4);
  const outcomes = await Promise.all(jobs);
  assert.ok(outcomes.every((o) => o.kind === 'done'));
  assert.equal(order, [0, 1, 2, 3, 4, 5, 6]);
  assert.ok(source.started.every((k) => k.maxInFlight === 1), 'no kernel ran two requests at once');
  await pool.close();
});

test('a short request is not blocked by a long one on another kernel', async () => {
  const pool = await KernelPool.start(new FakeKernelSource(), options({ size: 3 }));
  const long = pool.run(runs('sleep 300\nprint long'));
  const started = Date.now();
  const short = await pool.run(runs('sleep 20\nprint short'));
  assert.is(value(short), 'k2:short\n');
  assert.ok(Date.now() - started < 250, 'short finished first');
  assert.is(value(await long), 'k1:long\n');
  await pool.close();
});

test('queue bound: beyond maxQueued waiting requests the answer is queue-full with a retry estimate', async () => {
  const pool = await KernelPool.start(new FakeKernelSource(), options({ size: 1, maxQueued: 2 }));
  const accepted = [pool.run(runs('sleep 50')), pool.run(runs('sleep 10')), pool.run(runs('sleep 10'))];
  const refused = await pool.run(runs('print late'));
  assert.is(refused.kind, 'queue-full');
  assert.ok(refused.kind === 'queue-full' && refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 60);
  assert.ok((await Promise.all(accepted)).every((o) => o.kind === 'done'));
  assert.is(value(await pool.run(runs('print later'))), 'k1:later\n', 'the queue has room again');

  const none = await KernelPool.start(new FakeKernelSource(), options({ size: 1, maxQueued: 0 }));
  const busy = none.run(runs('sleep 30'));
  assert.is((await none.run(runs('print x'))).kind, 'queue-full', 'maxQueued 0: nobody waits');
  await busy;
  assert.is((await none.run(runs('print x'))).kind, 'done', 'a free kernel is used even with maxQueued 0');
  await Promise.all([pool.close(), none.close()]);
});

test('timeout while running: 504 at once, the kernel is interrupted and serves again', async () => {
  const source = new FakeKernelSource();
  const pool = await KernelPool.start(source, options({ size: 1, requestTimeoutMs: 60 }));
  const started = Date.now();
  assert.equal(await pool.run(runs('hang')), { kind: 'timeout', phase: 'running' });
  assert.ok(Date.now() - started < 500);
  const kernel = source.started[0];
  await eventually(() => pool.stats.idle === 1, 2000, 'kernel back');
  assert.is(kernel.interrupts, 1);
  assert.is(kernel.executed.at(-1), '', 'an empty execution checked it answers again');
  assert.is(value(await pool.run(runs('print again'))), 'k1:again\n');
  assert.is(source.starts, 1, 'no replacement was needed');
  await pool.close();
});

test('timeout while queued: the request leaves the queue (nothing to interrupt)', async () => {
  const source = new FakeKernelSource();
  const pool = await KernelPool.start(source, options({ size: 1, requestTimeoutMs: 60, interruptGraceMs: 300 }));
  const [running, queued] = await Promise.all([pool.run(runs('hang-hard')), pool.run(runs('print never'))]);
  assert.equal(running, { kind: 'timeout', phase: 'running' });
  assert.equal(queued, { kind: 'timeout', phase: 'queued' });
  assert.is(pool.stats.queued, 0);
  await pool.close();
  assert.not.ok(source.started[0].executed.includes('print never'));
});

test('timeout on a kernel that ignores the interrupt: it is shut down and replaced', async () => {
  const source = new FakeKernelSource();
  const log = memoryLogger();
  const pool = await KernelPool.start(source, options({ size: 2, requestTimeoutMs: 50, interruptGraceMs: 50, log }));
  assert.equal(await pool.run(runs('hang-hard')), { kind: 'timeout', phase: 'running' });
  assert.is(value(await pool.run(runs('print meanwhile'))), 'k2:meanwhile\n', 'the other kernel serves meanwhile');
  await eventually(() => source.started.length === 3 && pool.stats.idle === 2, 2000, 'replacement');
  const [stuck] = source.started;
  assert.is(stuck.interrupts, 1);
  assert.is(stuck.shutdowns, 1);
  assert.ok(log.lines.some((l) => l.includes('did not answer') && l.includes(stuck.id)));
  const ids = [value(await pool.run(runs('print a'))), value(await pool.run(runs('print b')))].map((v) => v.split(':')[0]).sort();
  assert.equal(ids, ['k2', 'k3']);
  await pool.close();
});

test('a kernel dying while serving: kernel-died for that request, a seeded replacement joins', async () => {
  const source = new FakeKernelSource();
  source.setup = ['set seeded yes'];
  const pool = await KernelPool.start(source, options({ size: 2 }));
  assert.equal(await pool.run(runs('die')), { kind: 'kernel-died' });
  await eventually(() => source.started.length === 3 && pool.stats.idle === 2, 2000, 'replacement');
  assert.is(source.started[0].shutdowns, 1, 'the dead kernel is shut down (resources released)');
  assert.is(source.started[2].memory.get('seeded'), 'yes', 'the replacement ran the setup code');
  assert.is(pool.stats.size, 2);
  await pool.close();
});

test('an idle kernel dying is replaced; failing replacements are retried with back-off', async () => {
  const source = new FakeKernelSource();
  const log = memoryLogger();
  const pool = await KernelPool.start(source, options({ size: 2, log }));
  source.failNext = 2;
  source.started[0].die();
  assert.is(pool.stats.idle, 1);
  assert.is(value(await pool.run(runs('print x'))), 'k2:x\n', 'the survivor serves');
  await eventually(() => pool.stats.idle === 2, 2000, 'replacement after retries');
  assert.is(source.starts, 5, '2 initial starts, 2 failures, 1 success');
  assert.is(log.lines.filter((l) => l.includes('starting a replacement kernel failed')).length, 2);
  await pool.close();
});

test('a job failing for another reason leaves the kernel in the pool', async () => {
  const pool = await KernelPool.start(new FakeKernelSource(), options({ size: 1 }));
  const outcome = await pool.run(async () => {
    throw new Error('boom');
  });
  assert.is(outcome.kind, 'failed');
  assert.is(value(await pool.run(runs('print ok'))), 'k1:ok\n');
  await pool.close();
});

test('a queued request whose client went away leaves the queue', async () => {
  const pool = await KernelPool.start(new FakeKernelSource(), options({ size: 1 }));
  const busy = pool.run(runs('sleep 40'));
  const client = new AbortController();
  const gone = pool.run(runs('print never'), client.signal);
  assert.is(pool.stats.queued, 1);
  client.abort();
  assert.equal(await gone, { kind: 'cancelled' });
  assert.is(pool.stats.queued, 0);
  await busy;
  const kernel = (await pool.run(async (k) => k)) as PoolOutcome<FakeKernel>;
  assert.not.ok(value(kernel).executed.includes('print never'));
  await pool.close();
});

test('drain: accepted requests finish, new ones are refused, then the kernels stop', async () => {
  const source = new FakeKernelSource();
  const pool = await KernelPool.start(source, options({ size: 1 }));
  const accepted = [pool.run(runs('sleep 30\nprint one')), pool.run(runs('print two'))];
  const drained = pool.drain();
  assert.equal(await pool.run(runs('print three')), { kind: 'closed' });
  assert.equal((await Promise.all(accepted)).map(value), ['k1:one\n', 'k1:two\n']);
  await drained;
  assert.is(source.started[0].shutdowns, 1);
  await pool.drain();
});

test('close while draining: the drain ends at once, its requests end closed', async () => {
  const source = new FakeKernelSource();
  const pool = await KernelPool.start(source, options({ size: 1 }));
  const running = pool.run(runs('hang'));
  const queued = pool.run(runs('print x'));
  const drained = pool.drain();
  await pool.close();
  await drained;
  assert.equal([(await running).kind, (await queued).kind], ['closed', 'closed']);
  assert.is(source.started[0].shutdowns, 1);
});

test('close: queued requests end closed, running ones are aborted, kernels shut down', async () => {
  const source = new FakeKernelSource();
  const pool = await KernelPool.start(source, options({ size: 1 }));
  const running = pool.run(runs('hang'));
  const queued = pool.run(runs('print x'));
  await sleep(5);
  await pool.close();
  assert.equal(await running, { kind: 'closed' });
  assert.equal(await queued, { kind: 'closed' });
  assert.is(source.started[0].shutdowns, 1);
  assert.equal(await pool.run(runs('print x')), { kind: 'closed' });
});

test.run();
