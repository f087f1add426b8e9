/**
 * Relay global ids without the GraphQL layer: base64 of "<Type>:<row id>", byte for byte what
 * `encodeGlobalID` of `@pothos/plugin-relay` produces, so ids in event payloads and messages match
 * the `id` fields of the API.
 */
export function globalId(typename: string, id: string): string {
  return Buffer.from(`${typename}:${id}`).toString('base64');
}
