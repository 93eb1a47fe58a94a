/**
 * --generate-config: the config file with every option, its default and help, and writing it
 * where the user's config is looked for (or to --config).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { CONFIG_FILE_NAME, defaultConfigFilePath } from '../paths.ts';
import { CONFIG_SECTIONS, DEFAULTS, optionTable, type OptionSpec } from './options.ts';
import { errorMessage } from '../log.ts';

/** "--port, env KG_PORT; also KernelGatewayApp.port": how an option can be given, for comments. */
function spelledOut(spec: OptionSpec, cls: string): string {
  const env = spec.env ? `env ${spec.env}` : 'no env var';
  const also = spec.classes.filter((c) => c !== cls).map((c) => `${c}.${spec.trait}`);
  return `${spec.flag}, ${env}${also.length > 0 ? `; also accepted as ${also.join(', ')}` : ''}`;
}

/**
 * The file --generate-config writes: every option with its default and help, grouped by class, as
 * JSON with `//` comment lines. The auth token line is commented out (unset: a token is generated),
 * so reading the file back gives exactly DEFAULTS.
 */
export function generateConfigText(): string {
  const lines = [
    '// kernelgateway configuration, written by `kernelgateway --generate-config`.',
    '// Every option is shown with its default. Lines starting with // are comments; the rest is JSON',
    '// (no trailing commas). Remove what you do not change.',
    '// Precedence: command line > this file > KG_* environment variables > defaults.',
    `// Read from --config FILE (or KG_CONFIG_FILE); else ${CONFIG_FILE_NAME} is looked for in each`,
    '// $JUPYTER_CONFIG_PATH entry, $JUPYTER_CONFIG_DIR (else ~/.jupyter), {prefix}/etc/jupyter',
    '// (prefix: $KG_ENV_PREFIX, $VIRTUAL_ENV or $CONDA_PREFIX), /usr/local/etc/jupyter, /etc/jupyter;',
    '// all files found are merged, the earlier ones winning.',
    '{',
  ];
  CONFIG_SECTIONS.forEach((cls, sectionIndex) => {
    const specs = optionTable.filter((o) => o.classes[0] === cls);
    const written = (spec: OptionSpec) => spec.key !== 'authToken';
    let lastWritten = -1;
    specs.forEach((spec, i) => {
      if (written(spec)) lastWritten = i;
    });
    lines.push(`  ${JSON.stringify(cls)}: {`);
    specs.forEach((spec, i) => {
      if (i > 0) lines.push('');
      // A comma whenever an option line follows in this class (also on the commented-out token line,
      // so that uncommenting it gives valid JSON).
      const comma = i < lastWritten ? ',' : '';
      lines.push(`    // ${spec.help}`, `    // ${spelledOut(spec, cls)}`);
      if (written(spec)) {
        lines.push(`    ${JSON.stringify(spec.trait)}: ${JSON.stringify(DEFAULTS[spec.key])}${comma}`);
      } else {
        lines.push(
          '    // unset: a token is generated at start-up. To set one, uncomment the next line and put it between',
          '    // the quotes (keep this file private); "" turns authentication off.',
          `    // ${JSON.stringify(spec.trait)}: ""${comma}`,
        );
      }
    });
    lines.push(sectionIndex < CONFIG_SECTIONS.length - 1 ? '  },' : '  }');
  });
  lines.push('}', '');
  return lines.join('\n');
}

/**
 * --generate-config: writes every option with its default to the --config file (or KG_CONFIG_FILE),
 * else to <JUPYTER_CONFIG_DIR or ~/.jupyter>/kernelgateway_config.json. An existing file is only
 * replaced with -y/--yes or when the user answers yes. Returns the exit code.
 */
export async function writeDefaultConfig(configFile: string | undefined, answerYes: boolean): Promise<number> {
  const target = resolvePath(configFile ?? (process.env.KG_CONFIG_FILE || defaultConfigFilePath(process.env)));
  if (existsSync(target) && !answerYes) {
    if (!process.stdin.isTTY) {
      process.stderr.write(`kernelgateway: ${target} exists; not overwriting it (give -y to overwrite)\n`);
      return 1;
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(`Overwrite ${target} with the default config? [y/N] `);
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) {
      process.stderr.write(`kernelgateway: not overwriting ${target}\n`);
      return 1;
    }
  }
  try {
    mkdirSync(dirname(target), { recursive: true });
    // Private from the start: the file is where a token may be put.
    writeFileSync(target, generateConfigText(), { mode: 0o600 });
  } catch (err) {
    process.stderr.write(`kernelgateway: cannot write ${target}: ${errorMessage(err)}\n`);
    return 1;
  }
  process.stdout.write(`Writing default config to: ${target}\n`);
  return 0;
}
