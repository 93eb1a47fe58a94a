/** Why a kernel could not be started, as the HTTP layer tells a client apart. */

export class NoSuchKernelSpecError extends Error {
  constructor(readonly requested: string, readonly available: string[]) {
    super(`No such kernelspec: "${requested}". Available kernelspecs: ${available.length ? available.join(', ') : '(none)'}`);
  }
}

/** A start refused because max_kernels kernels exist. */
export class KernelLimitError extends Error {}
/** A `path` outside the root directory the operator set. */
export class InvalidPathError extends Error {}
/** A kernel that did not come up, or whose seed notebook failed; it has been shut down. */
export class KernelStartError extends Error {}
