import { isUuid } from './ids.js';

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

/**
 * The row id inside a global id of `typename` (the inverse of globalId), or null when `value` is
 * not one: not base64 of "<typename>:<uuid>". For code outside the GraphQL layer (the CLI, the
 * event dispatcher); resolvers use `rowIdFrom` of graphql/scope.ts.
 */
export function rowIdOf(typename: string, value: string | null | undefined): string | null {
  if (!value || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const prefix = `${typename}:`;
  if (!decoded.startsWith(prefix)) return null;
  const id = decoded.slice(prefix.length);
  return isUuid(id) ? id.toLowerCase() : null;
}
