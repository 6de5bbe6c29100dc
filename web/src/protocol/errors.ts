/**
 * The protocol package's errors (mirrors src/porch/protocol/errors.py's idea: one stable code
 * per failure). CodecError is a malformed encoding: base64, hex or UTF-8.
 */

export class ProtocolError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

export class CodecError extends ProtocolError {
  constructor(message: string) {
    super("bad_encoding", message);
  }
}
