// Typed errors of the bridge: each says what went wrong and what to do.
import { UltraError } from "../errors.js";
import type { RemoteError } from "../protocol.js";

export { UltraError };

/** A Python exception or a refused request, with the sidecar's error code and traceback. */
export class SidecarError extends UltraError {
  override name = "SidecarError";
  readonly code: string;
  readonly traceback: string;
  constructor(
    readonly op: string,
    err: RemoteError,
  ) {
    super(`${op}: ${err.message} [${err.code}]`);
    this.code = err.code;
    this.traceback = err.traceback;
  }
}

export class ProtocolVersionError extends UltraError {
  override name = "ProtocolVersionError";
}

/** The sidecar process exited or stopped answering; `stderr` holds its last lines. */
export class SidecarDiedError extends UltraError {
  override name = "SidecarDiedError";
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(stderr ? `${message}\n--- sidecar stderr (last lines) ---\n${stderr}` : message);
  }
}

export class SidecarTimeoutError extends UltraError {
  override name = "SidecarTimeoutError";
}
