/**
 * What a kernel process is given, whoever starts it: its argv (kernelspec placeholders filled in)
 * and its environment (composed as jupyter_client and the reference gateway do, without the
 * gateway's secrets).
 */
import { homedir } from 'node:os';

/** Replace `{name}` placeholders anywhere in each argument; unknown ones stay as they are. Then expand a leading `~`. */
export function substituteArgv(argv: readonly string[], vars: Record<string, string>, home = homedir()): string[] {
  return argv.map((arg) => {
    const replaced = arg.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => (name in vars ? vars[name] : whole));
    return replaced === '~' || replaced.startsWith('~/') ? home + replaced.slice(1) : replaced;
  });
}

/** Python's string.Template.safe_substitute: $VAR and ${VAR} from `vars`, $$ -> $, unknown names kept. */
function templateSubstitute(value: string, vars: NodeJS.ProcessEnv): string {
  return value.replace(/\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\})/g, (whole, dollar, bare, braced) => {
    if (dollar) return '$';
    const name = bare ?? braced;
    const found = vars[name];
    return found === undefined ? whole : found;
  });
}

/** Variables of the gateway that a kernel must never see. */
export const GATEWAY_SECRETS = ['KG_AUTH_TOKEN', 'KG_AUTH_TOKEN_FILE'];

/**
 * A kernel's environment, composed as jupyter_client and the reference gateway do:
 * base env, then the kernelspec's env (templated against the base), no PYTHONEXECUTABLE for
 * Python kernels, KERNEL_GATEWAY=1, JPY_PARENT_PID so the kernel exits when we die, and no gateway secrets.
 */
export function composeKernelEnv(
  base: NodeJS.ProcessEnv,
  specEnv: Record<string, string>,
  language: string,
  secrets: readonly string[] = GATEWAY_SECRETS,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [name, value] of Object.entries(specEnv)) env[name] = templateSubstitute(value, base);
  if (language.toLowerCase().startsWith('python')) delete env.PYTHONEXECUTABLE;
  for (const name of secrets) delete env[name];
  env.KERNEL_GATEWAY = '1';
  env.JPY_PARENT_PID = String(process.pid);
  return env;
}
