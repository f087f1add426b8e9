import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { formatUuid, parseUuid, uuidv7Time } from '../../lib/uuid.js';

// Click ids and click row ids.
//
// A click row's id is a UUIDv7 made here, in Node, when the click is acknowledged: the row itself
// is written later, in a batch. The `clickId` handed to the visitor (the `rg_click` parameter) and
// to trackClick's caller is a signed token around that id and the link's id, so a signup can be
// attributed from the token alone — on any instance, before the row exists — and nobody can mint
// one for a link they never clicked.

// ---------------------------------------------------------------------------------------------
// Click id tokens: `ck_` + base64url(row id (16) ‖ link id (16) ‖ flags (1) ‖ HMAC-SHA256 tag (15)).
// 48 bytes, so 64 base64url characters without padding; 67 characters in all.
// ---------------------------------------------------------------------------------------------

export const CLICK_ID_PREFIX = 'ck_';
const BODY_BYTES = 33;
const TAG_BYTES = 15;
const TOKEN_BYTES = BODY_BYTES + TAG_BYTES;
const TOKEN_TEXT = /^ck_[A-Za-z0-9_-]{64}$/;
const FLAG_DISCARDED = 0x01;

/** What a click id says, once its signature checks out. */
export interface DecodedClickId {
  /** The Click row's id (it may not be written yet: rows are written in batches). */
  clickRowId: string;
  /** The ReferralLink clicked. */
  linkId: string;
  /** When the click was acknowledged (the UUIDv7 time of the row id). */
  clickedAt: Date;
  /** The click was recorded as not rewardable (inactive or banned partner, program not active, …). */
  discarded: boolean;
}

/**
 * Derive a key of its own from the installation secret, per use (as the JWT signer does). A
 * KeyObject, so the hot path does not import the key again for every HMAC.
 */
export function deriveKey(installationSecret: string, purpose: string): KeyObject {
  return createSecretKey(createHmac('sha256', installationSecret).update(`refgraph:${purpose}:v1`).digest());
}

/** Makes and checks click id tokens with a key derived from the installation secret. */
export class ClickIdCodec {
  private readonly key: KeyObject;

  constructor(installationSecret: string) {
    this.key = deriveKey(installationSecret, 'click-id');
  }

  private tag(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, TAG_BYTES);
  }

  /** The token for a click row (`rowId` must be a UUIDv7) of a link. */
  encode(rowId: Uint8Array | string, linkId: Uint8Array | string, discarded: boolean): string {
    const row = typeof rowId === 'string' ? parseUuid(rowId) : rowId;
    const link = typeof linkId === 'string' ? parseUuid(linkId) : linkId;
    if (!row || !link || row.length !== 16 || link.length !== 16)
      throw new TypeError('click ids are made from two UUIDs');
    const token = Buffer.allocUnsafe(TOKEN_BYTES);
    token.set(row, 0);
    token.set(link, 16);
    token[32] = discarded ? FLAG_DISCARDED : 0;
    this.tag(token.subarray(0, BODY_BYTES)).copy(token, BODY_BYTES);
    return CLICK_ID_PREFIX + token.toString('base64url');
  }

  /** The click inside a token, or null when it is malformed, altered or made with another secret. */
  decode(token: string): DecodedClickId | null {
    if (typeof token !== 'string' || !TOKEN_TEXT.test(token)) return null;
    const bytes = Buffer.from(token.slice(CLICK_ID_PREFIX.length), 'base64url');
    if (bytes.length !== TOKEN_BYTES) return null; // 64 characters carry exactly 48 bytes: no spare bits
    const body = bytes.subarray(0, BODY_BYTES);
    if (!timingSafeEqual(this.tag(body), bytes.subarray(BODY_BYTES))) return null;
    const flags = body[32]!;
    if ((flags & ~FLAG_DISCARDED) !== 0) return null;
    const clickedAt = uuidv7Time(body.subarray(0, 16));
    if (!clickedAt) return null;
    return {
      clickRowId: formatUuid(body.subarray(0, 16)),
      linkId: formatUuid(body.subarray(16, 32)),
      clickedAt,
      discarded: (flags & FLAG_DISCARDED) !== 0,
    };
  }
}

/**
 * For conversions: the click inside `token`, or null when it is not a valid click id of this
 * installation. A request handler has the codec as `ctx.clicks.codec` (or calls
 * `ctx.clicks.decodeClickId(token)`). The link id still has to be looked up in the caller's
 * workspace and mode: a token from another tenant names a link the caller cannot see.
 */
export function decodeClickId(token: string, codec: ClickIdCodec): DecodedClickId | null {
  return codec.decode(token);
}
