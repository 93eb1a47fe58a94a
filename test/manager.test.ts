/**
 * The kernel manager with kernels on real ZeroMQ sockets in this process (no Python): the
 * provisioner a kernelspec names, limits without overshoot, the pool, culling, models, and what a
 * start request turns into (working directory, environment).
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidPathError, KernelLimitError, KernelManager, NoSuchKernelSpecError } from '../src/kernels/manager.ts';
import { ProvisionerRegistry, UnknownProvisionerError } from '../src/kernels/provisioners/provisioner.ts';
import { KernelSpecStore, type KernelSpec } from '../src/kernels/specs.ts';
import { kernelBaseEnv, kernelWorkingDir } from '../src/kernels/start-request.ts';
import { createLogger } from '../src/log.ts';
import { FakeProvisioner } from './helpers/fake-kernel.ts';

const test = suite('kernel manager over kernels on real ZeroMQ sockets');
const log = createLogger('ERROR');

function spec(name: string, metadata: Record<string, unknown> = {}): KernelSpec {
  return {
    name,
    resourceDir: '',
    spec: { argv: [], env: {}, display_name: name, language: 'fake', interrupt_mode: 'signal', metadata: { kernel_provisioner: { provisioner_name: 'fake-provisioner' }, ...metadata } },
  };
}

const provisioners: FakeProvisioner[] = [];
function registry(): ProvisionerRegistry {
  return new ProvisionerRegistry().register('fake-provisioner', () => {
    const p = new FakeProvisioner();
    provisioners.push(p);
    return p;
  });
}

let root: string;
test.before(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'kg-manager-')));
});
test.after(() => rmSync(root, { recursive: true, force: true }));

function manager(options: Partial<ConstructorParameters<typeof KernelManager>[0]> = {}): KernelManager {
  return new KernelManager({
    specs: new KernelSpecStore([], log, [spec('fake'), spec('other'), spec('nowhere', { kernel_provisioner: { provisioner_name: 'no-such-provisioner' } })]),
    provisioners: registry(),
    defaultKernelName: 'fake',
    runtimeDir: root,
    rootDir: root,
    kernelInfoTimeout: 10,
    kernelStartupTimeout: 10,
    log,
    ...options,
  });
}

test('a start goes through the provisioner its kernelspec names; the model carries the connection count', async () => {
  const m = manager();
  m.connectionsOf = () => 3;
  const kernel = await m.start({ name: 'fake' });
  assert.ok(kernel.ready);
  const model = m.modelOf(kernel);
  assert.equal(Object.keys(model), ['id', 'name', 'last_activity', 'execution_state', 'connections']);
  assert.is(model.connections, 3);
  assert.is(model.execution_state, 'idle');
  assert.is(m.list().length, 1);
  assert.ok(await m.shutdown(kernel.id));
  assert.is(m.list().length, 0);
  assert.ok(provisioners.at(-1)!.cleanedUp, 'the provisioner did not clean up');
});

test('unknown kernelspec and unknown provisioner: errors that name what is missing and what exists', async () => {
  const m = manager();
  const noSpec = await m.start({ name: 'nope' }).catch((e: unknown) => e);
  assert.instance(noSpec, NoSuchKernelSpecError);
  assert.match((noSpec as Error).message, /"nope".*fake, nowhere, other/);
  const noProvisioner = await m.start({ name: 'nowhere' }).catch((e: unknown) => e);
  assert.instance(noProvisioner, UnknownProvisionerError);
  assert.match((noProvisioner as Error).message, /provisioner "no-such-provisioner".*known: fake-provisioner/);
  assert.is(m.count, 0, 'a failed start left a place taken');
});

test('max kernels: concurrent starts never overshoot', async () => {
  const m = manager({ maxKernels: 2 });
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => m.start({ name: 'fake' })));
  const started = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.is(started.length, 2);
  assert.is(refused.length, 3);
  for (const r of refused) assert.instance(r.reason, KernelLimitError);
  await m.shutdownAll();
});

test('the pool: prespawned kernels are handed out at once and refilled; requests with env get a fresh kernel', async () => {
  const m = manager({ prespawnCount: 1 });
  m.fillPool();
  const deadline = Date.now() + 10000;
  while (m.count < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  const before = provisioners.length;
  const pooled = await m.start({});
  assert.ok(pooled.ready);
  assert.is(m.list().length, 1, 'the handed-out kernel is listed');
  const fresh = await m.start({ env: { KERNEL_X: '1' } });
  assert.is.not(fresh.id, pooled.id);
  // One refill for the hand-out, one launch for the request with env.
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(provisioners.length >= before + 2, `provisioners: ${provisioners.length - before} new`);
  await m.shutdownAll();
});

test('culling: idle kernels without connections go; connected or busy ones stay unless asked', async () => {
  const m = manager({ cull: { idleTimeout: 1, interval: 3600, connected: false, busy: false } });
  const idle = await m.start({});
  const connected = await m.start({});
  m.connectionsOf = (id) => (id === connected.id ? 1 : 0);
  const later = Date.now() + 5000;
  const culled = await m.cull(later);
  assert.equal(culled, [idle.id]);
  assert.ok(m.get(connected.id));
  await m.shutdownAll();
});

test('working directory: a path escaping --root-dir is refused; KERNEL_WORKING_DIR outside it falls back to the root', () => {
  const outside = realpathSync(mkdtempSync(join(tmpdir(), 'kg-outside-')));
  try {
    assert.throws(() => kernelWorkingDir({ path: '../x' }, root, true, log), (e: unknown) => e instanceof InvalidPathError);
    assert.is(kernelWorkingDir({ path: '../x' }, root, false, log), root);
    assert.is(kernelWorkingDir({ env: { KERNEL_WORKING_DIR: outside } }, root, true, log), root);
    assert.is(kernelWorkingDir({ env: { KERNEL_WORKING_DIR: outside } }, root, false, log), outside);
    assert.is(kernelWorkingDir({ env: { KERNEL_WORKING_DIR: join(outside, 'missing') } }, root, false, log), root);
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
});

test('environment: without env the gateway\'s; with env only PATH, listed gateway variables, KERNEL_* and listed client variables', () => {
  const gatewayEnv = { PATH: '/bin', HOME: '/root', SECRET: 's', KEEP: 'k' };
  assert.equal(kernelBaseEnv(undefined, gatewayEnv), gatewayEnv);
  assert.equal(kernelBaseEnv({ KERNEL_A: '1', OTHER: '2', ALLOWED: '3' }, gatewayEnv, ['ALLOWED'], ['KEEP']), {
    PATH: '/bin',
    KEEP: 'k',
    KERNEL_A: '1',
    ALLOWED: '3',
  });
});

test.run();
