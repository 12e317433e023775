// Entry data as the driver writes it: an 8-byte request id, then the user's command. The id
// lets the node that proposed a command hand the state machine's result back to the caller
// once the entry is applied, whichever leader committed it.
export const ENVELOPE_HEADER = 8;

export function wrapCommand(requestId: bigint, command: Uint8Array): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER + command.length);
  new DataView(out.buffer).setBigUint64(0, requestId);
  out.set(command, ENVELOPE_HEADER);
  return out;
}

/** Empty data (a new leader's no-op entry) has no request. */
export function unwrapCommand(data: Uint8Array): { requestId: bigint; command: Uint8Array } | undefined {
  if (data.length < ENVELOPE_HEADER) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { requestId: view.getBigUint64(0), command: data.subarray(ENVELOPE_HEADER) };
}
