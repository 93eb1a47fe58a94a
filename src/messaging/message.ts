/** Jupyter messaging protocol 5.x types, as far as the gateway needs them. */

export const PROTOCOL_VERSION = '5.4';

export type Channel = 'shell' | 'control' | 'stdin' | 'iopub';

export interface MessageHeader {
  msg_id: string;
  msg_type: string;
  username: string;
  session: string;
  date: string;
  version: string;
  subshell_id?: string | null;
  [key: string]: unknown;
}

/** A message whose four JSON parts are still the exact bytes from (or for) the wire. */
export interface RawMessage {
  header: Buffer;
  parentHeader: Buffer;
  metadata: Buffer;
  content: Buffer;
  buffers: Buffer[];
}

export type ExecutionState = 'starting' | 'idle' | 'busy' | 'restarting' | 'dead';

/** A kernel connection file, as jupyter_client writes it. */
export interface ConnectionInfo {
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  ip: string;
  key: string;
  transport: 'tcp' | 'ipc';
  signature_scheme: string;
  kernel_name?: string;
}

/** A JSON object (not null, not an array): what every parser of client or file input checks first. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
