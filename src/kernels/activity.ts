/**
 * Jupyter Server's activity rules: which kernel messages count as a user's activity (culling uses
 * it) and which status messages change the execution state the REST model reports.
 */
import type { ExecutionState, MessageHeader } from '../messaging/message.ts';
import type { KernelMessage } from './kernel-message.ts';

/** Message types that do not count as user activity (Jupyter Server's list). */
const UNTRACKED = new Set([
  'comm_info_request', 'comm_info_reply', 'kernel_info_request', 'kernel_info_reply',
  'shutdown_request', 'shutdown_reply', 'interrupt_request', 'interrupt_reply',
  'debug_request', 'debug_reply', 'stream', 'display_data', 'update_display_data',
  'execute_input', 'execute_result', 'error', 'status', 'clear_output', 'debug_event',
  'input_request', 'input_reply',
]);

export interface Activity {
  executionState: ExecutionState;
  lastActivity: Date;
}

/** Update `activity` for one iopub message: user-caused traffic moves last_activity and the state. */
export function trackActivity(activity: Activity, message: KernelMessage, parent: MessageHeader | undefined): void {
  const type = message.header.msg_type;
  const parentTracked = !parent || typeof parent.msg_type !== 'string' || !UNTRACKED.has(parent.msg_type);
  if (!UNTRACKED.has(type) || parentTracked || activity.executionState === 'busy') activity.lastActivity = new Date();
  if (type !== 'status') return;
  let state: unknown;
  try {
    state = (JSON.parse(message.parsed.content.toString('utf8')) as { execution_state?: unknown }).execution_state;
  } catch {
    return;
  }
  if (parentTracked && (state === 'busy' || state === 'idle' || state === 'starting')) activity.executionState = state;
  else if (activity.executionState === 'starting' && state !== 'starting') activity.executionState = 'idle';
}
