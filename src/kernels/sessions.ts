/**
 * Sessions as Jupyter Server keeps them: a named path (notebook, console, file) bound to a kernel.
 * In memory; a session whose kernel is gone disappears with it.
 */
import { randomUUID } from 'node:crypto';
import type { Kernel, KernelModel } from './kernel.ts';
import type { KernelManager, StartRequest } from './manager.ts';

export interface Session {
  id: string;
  path: string;
  name: string;
  type: string;
  kernelId: string;
}

/** Jupyter Server's session model; `notebook` only for notebook sessions, as it does. */
export interface SessionModel {
  id: string;
  path: string;
  name: string;
  type: string;
  kernel: KernelModel | null;
  notebook?: { path: string; name: string };
}

export class UnknownKernelError extends Error {}

export interface SessionUpdate {
  path?: string;
  name?: string;
  type?: string;
  kernel?: { id?: string; name?: string };
}

export class SessionManager {
  readonly #sessions = new Map<string, Session>();

  constructor(private readonly kernels: KernelManager) {}

  /** Live sessions; those whose kernel has gone are dropped. */
  list(): Session[] {
    for (const session of this.#sessions.values()) {
      if (!this.kernels.get(session.kernelId)) this.#sessions.delete(session.id);
    }
    return [...this.#sessions.values()];
  }

  get(id: string): Session | undefined {
    return this.list().find((session) => session.id === id);
  }

  findByPath(path: string): Session | undefined {
    return this.list().find((session) => session.path === path);
  }

  kernelOf(session: Session): Kernel | undefined {
    return this.kernels.get(session.kernelId);
  }

  model(session: Session): SessionModel {
    const kernel = this.kernelOf(session);
    const model: SessionModel = {
      id: session.id,
      path: session.path,
      name: session.name,
      type: session.type,
      kernel: kernel ? this.kernels.modelOf(kernel) : null,
    };
    if (session.type === 'notebook') model.notebook = { path: session.path, name: session.name };
    return model;
  }

  /** A session for `path`: reuse the kernel named by id, or start one (with JPY_SESSION_NAME set, as Jupyter Server does). */
  async create(fields: { path: string; name: string; type: string; kernel: { id?: string; name?: string } }): Promise<Session> {
    const kernel = await this.#kernelFor(fields.kernel, fields.path);
    const session: Session = { id: randomUUID(), path: fields.path, name: fields.name, type: fields.type, kernelId: kernel.id };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** Change path, name, type or kernel (by id, or a new one by name); a replaced kernel is shut down. */
  async update(session: Session, update: SessionUpdate): Promise<Session> {
    if (update.path !== undefined) session.path = update.path;
    if (update.name !== undefined) session.name = update.name;
    if (update.type !== undefined) session.type = update.type;
    if (update.kernel?.id !== undefined || update.kernel?.name !== undefined) {
      const old = session.kernelId;
      const kernel = await this.#kernelFor(update.kernel, session.path);
      session.kernelId = kernel.id;
      // As Jupyter Server: the kernel the session leaves is shut down.
      if (old !== kernel.id) await this.kernels.shutdown(old);
    }
    return session;
  }

  /** Remove the session and shut its kernel down; false when the kernel was already gone. */
  async delete(session: Session): Promise<boolean> {
    this.#sessions.delete(session.id);
    return this.kernels.shutdown(session.kernelId);
  }

  async #kernelFor(kernel: { id?: string; name?: string }, path: string): Promise<Kernel> {
    if (kernel.id !== undefined) {
      const existing = this.kernels.get(kernel.id);
      if (!existing) throw new UnknownKernelError(`Kernel does not exist: ${kernel.id}`);
      return existing;
    }
    const request: StartRequest = { name: kernel.name, path: parentOf(path), extraEnv: { JPY_SESSION_NAME: path } };
    return this.kernels.start(request);
  }
}

/** The folder part of an API path ('a/b/nb.ipynb' -> 'a/b'), where the kernel should run. */
function parentOf(path: string): string | undefined {
  const at = path.lastIndexOf('/');
  return at > 0 ? path.slice(0, at) : undefined;
}
