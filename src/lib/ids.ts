const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Row ids are UUIDs; anything else can never match a row (and must not reach a uuid column). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A well-formed UUID that no row has: stands in for an id that cannot exist. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';
