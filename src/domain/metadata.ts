import type { Validator } from './errors.js';

/** At most this many top-level keys in a metadata object. */
export const METADATA_MAX_KEYS = 50;
/** At most this many bytes of metadata, as compact UTF-8 JSON. */
export const METADATA_MAX_BYTES = 8 * 1024;

export type Metadata = Record<string, unknown>;

function isPlainObject(value: unknown): value is Metadata {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * Checks an integrator's metadata: a JSON object (never an array, a string of JSON or a number)
 * of at most METADATA_MAX_KEYS top-level keys and METADATA_MAX_BYTES of compact JSON. Problems go
 * to `v` under `field`; the value is returned as given (undefined and null pass through, so a
 * caller decides what "not given" and "null" mean for its input).
 */
export function checkMetadata(v: Validator, value: unknown, field: string[]): Metadata | null | undefined {
  if (value === undefined || value === null) return value;
  if (!isPlainObject(value)) {
    v.check(false, field, `metadata must be a JSON object such as {"plan": "pro"}; got ${describe(value)}.`);
    return undefined;
  }
  const keys = Object.keys(value).length;
  v.check(
    keys <= METADATA_MAX_KEYS,
    field,
    `metadata may have at most ${METADATA_MAX_KEYS} top-level keys; got ${keys}. Nest related fields in one key.`,
  );
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  v.check(
    bytes <= METADATA_MAX_BYTES,
    field,
    `metadata may be at most ${METADATA_MAX_BYTES} bytes as JSON; got ${bytes}. Keep large documents in your own store and put their id here.`,
  );
  return value;
}

/**
 * A containment filter on metadata (`{"plan": "pro"}` matches every row whose metadata holds that
 * key with that value, nested objects matched the same way): the same rules as metadata itself.
 */
export function checkMetadataFilter(v: Validator, value: unknown, field: string[]): Metadata | undefined {
  const checked = checkMetadata(v, value, field);
  return checked ?? undefined;
}
