/** A message from a kernel, as the gateway passes it on. */
import type { Channel, MessageHeader } from '../messaging/message.ts';
import type { Parsed } from '../messaging/session.ts';

/** Signature checked and header read; every other part is still the kernel's exact bytes. */
export interface KernelMessage {
  channel: Channel;
  parsed: Parsed;
  header: MessageHeader;
}
