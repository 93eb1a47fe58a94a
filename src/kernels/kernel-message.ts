/** A message from a kernel, as the gateway passes it on. */
import type { Channel, ExecutionState, MessageHeader } from '../messaging/message.ts';
import type { Parsed } from '../messaging/session.ts';

/** Signature checked and header read; every other part is still the kernel's exact bytes. */
export interface KernelMessage {
  channel: Channel;
  parsed: Parsed;
  header: MessageHeader;
}

/** The REST model of a kernel, in Jupyter Server's key order. */
export interface KernelModel {
  id: string;
  name: string;
  last_activity: string;
  execution_state: ExecutionState;
  connections: number;
  reason?: string;
  /** Where a provisioner says more than "a local process" (e.g. a batch job). */
  provisioner?: Record<string, unknown>;
}
