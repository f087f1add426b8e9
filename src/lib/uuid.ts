import { randomFillSync } from 'node:crypto';

// ---------------------------------------------------------------------------------------------
// UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit counter (rand_a, method 1 of
// section 6.2, so ids made in one process in one millisecond still sort in order), the variant,
// and 62 random bits.
// ---------------------------------------------------------------------------------------------

const POOL_SIZE = 8 * 512;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

function randomBytes8(): Buffer {
  if (poolOffset + 8 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 8);
  poolOffset += 8;
  return bytes;
}

/**
 * Makes UUIDv7s that strictly increase, even within one millisecond or when the clock steps back
 * (the last time is kept until the clock catches up).
 */
export class UuidV7Generator {
  private lastMs = -1;
  private counter = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  /**
   * A new UUIDv7 as 16 bytes, and the millisecond it carries. `at` (ms) backdates it, within the
   * same rule: never before the last id of this generator.
   */
  next(at?: number): { bytes: Buffer; ms: number } {
    const random = randomBytes8();
    let ms = at ?? this.clock();
    if (ms > this.lastMs) {
      // A fresh millisecond: start the counter at a random point of its lower half, leaving room.
      this.counter = ((random[0]! << 8) | random[1]!) & 0x7ff;
    } else {
      ms = this.lastMs;
      this.counter++;
      if (this.counter > 0xfff) {
        ms++; // 4096 ids in one millisecond: borrow the next one rather than break the order
        this.counter = 0;
      }
    }
    this.lastMs = ms;
    const bytes = Buffer.allocUnsafe(16);
    bytes.writeUIntBE(ms, 0, 6);
    bytes[6] = 0x70 | (this.counter >> 8);
    bytes[7] = this.counter & 0xff;
    bytes[8] = 0x80 | (random[2]! & 0x3f);
    random.copy(bytes, 9, 1, 8);
    return { bytes, ms };
  }
}

const inProcess = new UuidV7Generator();

/** A new UUIDv7 as 16 bytes, and the millisecond it carries. Monotonic within the process. */
export function uuidv7Bytes(): { bytes: Buffer; ms: number } {
  return inProcess.next();
}

/** A new UUIDv7 in its text form. Monotonic within the process. */
export function uuidv7(): string {
  return formatUuid(inProcess.next().bytes);
}

export function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseUuid(text: string): Buffer | null {
  return UUID_TEXT.test(text) ? Buffer.from(text.replace(/-/g, ''), 'hex') : null;
}

/** The creation time inside a UUIDv7 (null for any other kind of UUID). */
export function uuidv7Time(id: string | Uint8Array): Date | null {
  const bytes = typeof id === 'string' ? parseUuid(id) : Buffer.from(id.buffer, id.byteOffset, id.byteLength);
  if (bytes?.length !== 16 || bytes[6]! >> 4 !== 7 || (bytes[8]! & 0xc0) !== 0x80) return null;
  return new Date(bytes.readUIntBE(0, 6));
}
