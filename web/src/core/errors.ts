/**
 * The client's errors: one hierarchy with stable codes (mirrors porch.client.errors). Every
 * message is one sentence a person can act on; the UI shows it as it is.
 */

export class ClientError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(message: string, code = "client_error", details: Record<string, unknown> = {}) {
    super(message);
    this.name = "ClientError";
    this.code = code;
    this.details = details;
  }
}

/** Keys from the directory that do not verify, or a changed identity that cannot be used. */
export class IdentityError extends ClientError {
  constructor(message: string) {
    super(message, "identity");
    this.name = "IdentityError";
  }
}

/** The server answered with a Porch error (`{"error": {"code", "message", ...}}`). */
export class ServerError extends ClientError {
  readonly status: number;

  constructor(code: string, message: string, status = 0, details: Record<string, unknown> = {}) {
    super(message, code, details);
    this.name = "ServerError";
    this.status = status;
  }
}

/** The server could not be reached at all. */
export class ServerUnreachable extends ClientError {
  constructor(message: string) {
    super(message, "server_unreachable");
    this.name = "ServerUnreachable";
  }
}
