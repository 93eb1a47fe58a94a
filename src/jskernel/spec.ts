/** The kernelspec of the JavaScript kernel built into the gateway. */
import { resolve } from 'node:path';

export const BUILTIN_JAVASCRIPT_NAME = 'javascript';

export interface BuiltinJavascriptSpec {
  argv: string[];
  display_name: 'JavaScript (kernelgateway)';
  language: 'javascript';
  interrupt_mode: 'signal' | 'message';
  env: Record<string, never>;
  metadata: Record<string, never>;
}

/**
 * The kernel.json for the built-in kernel. `argvPrefix` starts the gateway itself:
 * [process.execPath, <script>] under node + bundle, [process.execPath] as a single executable.
 */
export function builtinJavascriptSpec(argvPrefix: string[]): BuiltinJavascriptSpec {
  return {
    argv: [...argvPrefix, 'kernel', '-f', '{connection_file}'],
    display_name: 'JavaScript (kernelgateway)',
    language: 'javascript',
    // SIGINT stops even synchronous code (vm's breakOnSigint), whichever thread holds the sockets; Windows
    // has no SIGINT to send, so there the gateway asks by message.
    interrupt_mode: process.platform === 'win32' ? 'message' : 'signal',
    env: {},
    metadata: {},
  };
}

export interface Runtime {
  argv: readonly string[];
  execPath: string;
  execArgv: readonly string[];
  /** Running as a single executable (Node SEA, `deno compile`). */
  singleExecutable: boolean;
  deno: boolean;
}

export function currentRuntime(): Runtime {
  const deno = (globalThis as { Deno?: { mainModule?: string } }).Deno;
  let sea = false;
  try {
    const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
    sea = !!(getBuiltin?.('node:sea') as { isSea?: () => boolean } | undefined)?.isSea?.();
  } catch {
    /* no node:sea */
  }
  // `deno compile` binaries run an embedded module from a virtual path, not a file next to them
  const denoCompiled = !!deno && typeof deno.mainModule === 'string' && /deno-compile-/.test(deno.mainModule);
  return { argv: process.argv, execPath: process.execPath, execArgv: process.execArgv, singleExecutable: sea || denoCompiled, deno: !!deno };
}

/**
 * How to start this program again, for builtinJavascriptSpec: [execPath] for a single executable,
 * [deno, 'run', '-A', script] under Deno, else [node, ...execArgv (without --inspect*), script].
 */
export function selfArgvPrefix(runtime: Runtime = currentRuntime()): string[] {
  const script = runtime.argv[1];
  if (runtime.singleExecutable || !script || script === runtime.execPath) return [runtime.execPath];
  if (runtime.deno) return [runtime.execPath, 'run', '-A', resolve(script)];
  // node flags carry over, except the debugger's (its port would clash)
  const flags = runtime.execArgv.filter((flag) => !/^--(inspect|debug)/.test(flag));
  return [runtime.execPath, ...flags, resolve(script)];
}

/** A 64x64 logo (an original drawing: braces around a gateway arch), served as logo-svg. */
export const JAVASCRIPT_LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <rect x="2" y="2" width="60" height="60" rx="12" fill="#2b2b33"/>
  <path d="M22 16c-5 0-6 3-6 7v4c0 3-1 5-4 5 3 0 4 2 4 5v4c0 4 1 7 6 7" fill="none" stroke="#f2c94c" stroke-width="4" stroke-linecap="round"/>
  <path d="M42 16c5 0 6 3 6 7v4c0 3 1 5 4 5-3 0-4 2-4 5v4c0 4-1 7-6 7" fill="none" stroke="#f2c94c" stroke-width="4" stroke-linecap="round"/>
  <path d="M25 44V32a7 7 0 0 1 14 0v12" fill="none" stroke="#ffffff" stroke-width="4" stroke-linecap="round"/>
</svg>
`;
