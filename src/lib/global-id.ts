/**
 * Relay global ids without the GraphQL layer: base64 of "<Type>:<row id>", byte for byte what
 * `encodeGlobalID` of `@pothos/plugin-relay` produces, so ids in event payloads and messages match
 * the `id` fields of the API.
 */
export function globalId(typename: string, id: string): string {
  return Buffer.from(`${typename}:${id}`).toString('base64');
}

/**
 * The type and row id inside a global id, or null when it is not one (not base64 of
 * "<Type>:<id>"): the reading of `decodeGlobalID` of `@pothos/plugin-relay`, for code outside the
 * GraphQL layer (the CSV exports' `programId`).
 */
export function parseGlobalId(value: string): { typename: string; id: string } | null {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) return null;
  const decoded = Buffer.from(value, 'base64').toString();
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  const typename = decoded.slice(0, colon);
  const id = decoded.slice(colon + 1);
  return /^[A-Z_a-z]\w*$/.test(typename) && id !== '' ? { typename, id } : null;
}
